import { Resource } from './assembly';
import { Model } from './model';

/**
 * The plane and its link as inline SVG, drawn from the templates: the account and VPC, one box per group of
 * workloads (the agents of a nested stack together), per data store and per VPC endpoint, the vendor's side
 * behind its endpoint service, the internet (reached or not), and a line for every pair of boxes an egress
 * rule connects.
 */
interface Box { id: string; label: string; sub: string; groups: Set<Resource>; x: number; y: number; w: number; h: number; fill: string }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const commonPrefix = (paths: string[]) => {
  const parts = paths.map((p) => p.split('/'));
  const out: string[] = [];
  for (let i = 0; parts.every((p) => i < p.length - 1 && p[i] === parts[0][i]); i++) out.push(parts[0][i]);
  return out.join('/');
};
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function diagram(m: Model, settings: { customerId?: string }): string {
  const a = m.assembly;
  const W = 1240;
  const boxes: Box[] = [];
  const row = (items: Omit<Box, 'x' | 'y' | 'w' | 'h'>[], y: number, x0: number, width: number, h = 54) => {
    const gap = 10;
    const w = items.length ? Math.min(200, (width - gap * (items.length - 1)) / items.length) : 0;
    items.forEach((b, i) => boxes.push({ ...b, x: x0 + i * (w + gap), y, w, h }));
  };

  // Workloads: agents grouped by the template (nested stack) they are in; every other workload on its own.
  const agentGroups = new Map<string, typeof m.workloads>();
  for (const w of m.workloads.filter((x) => x.kind === 'agent')) {
    const key = w.resource.template.file;
    agentGroups.set(key, [...(agentGroups.get(key) ?? []), w]);
  }
  const workloadItems = [
    ...[...agentGroups.values()].map((ws, i) => ({
      id: `agents-${i}`, label: `${ws.length} agents`, sub: clip(commonPrefix(ws.map((w) => a.shortPath(w.resource))) || ws[0].resource.template.file, 30),
      groups: new Set(ws.flatMap((w) => w.securityGroups)), fill: '#dce8fb',
    })),
    ...m.workloads.filter((w) => w.kind !== 'agent').map((w, i) => ({
      id: `svc-${i}`, label: clip(w.name.split('/').pop() ?? w.name, 24), sub: w.kind, groups: new Set(w.securityGroups), fill: '#e4f3e4',
    })),
  ];
  const storeTypes = ['AWS::RDS::DBInstance', 'AWS::RDS::DBCluster', 'AWS::ElastiCache::ReplicationGroup', 'AWS::EFS::FileSystem', 'AWS::DynamoDB::Table', 'AWS::S3::Bucket'];
  const stores = a.ofType(...storeTypes);
  const storeGroups = (r: Resource): Set<Resource> => {
    const gs = r.type === 'AWS::EFS::FileSystem'
      ? a.ofType('AWS::EFS::MountTarget').filter((t) => a.target(t.props.FileSystemId, t.template)?.resource === r).flatMap((t) => t.props.SecurityGroups ?? []).map((g: any) => ({ g, t: r.template }))
      : (r.props.VPCSecurityGroups ?? r.props.SecurityGroupIds ?? []).map((g: any) => ({ g, t: r.template }));
    return new Set(gs.map(({ g, t }: any) => a.target(g, t)?.resource).filter((x: Resource | undefined): x is Resource => !!x));
  };
  const storeItems = stores.map((r, i) => ({ id: `store-${i}`, label: clip(a.label(r), 24), sub: r.type.split('::').slice(1).join(' '), groups: storeGroups(r), fill: '#fbeedc' }));
  const endpointItems = m.endpoints.filter((e) => !e.thirdParty).map((e, i) => ({
    id: `ep-${i}`, label: clip(e.service.replace(/^com\.amazonaws\.\$\{AWS::Region\}\./, ''), 22), sub: `${e.type} endpoint`,
    groups: new Set(e.securityGroups.map((l) => m.securityGroups.find((g) => a.shortPath(g) === l)).filter((x): x is Resource => !!x)), fill: '#eeeeee',
  }));
  const linkItems = m.endpoints.filter((e) => e.thirdParty).map((e, i) => ({
    id: `link-${i}`, label: 'vendor link endpoint', sub: clip(e.service, 40),
    groups: new Set(e.securityGroups.map((l) => m.securityGroups.find((g) => a.shortPath(g) === l)).filter((x): x is Resource => !!x)), fill: '#f6dede',
  }));

  const inner = 860;
  const perRow = (n: number) => Math.max(1, Math.ceil(n / 5));
  let y = 110;
  const place = (items: typeof workloadItems) => {
    const chunks = perRow(items.length);
    const size = Math.ceil(items.length / chunks);
    for (let c = 0; c < chunks; c++) { row(items.slice(c * size, (c + 1) * size), y, 60, inner - 80); y += 70; }
  };
  const rowTitles: { y: number; text: string }[] = [];
  rowTitles.push({ y: y - 8, text: 'workloads' }); place(workloadItems);
  rowTitles.push({ y: y - 8, text: 'data stores' }); place(storeItems);
  const awsTitle = rowTitles.length;
  rowTitles.push({ y: y - 8, text: 'VPC endpoints (AWS services)' }); place(endpointItems);
  if (linkItems.length) { rowTitles.push({ y: y - 8, text: 'link' }); place(linkItems); }
  const height = y + 40;

  // Outside the account: the vendor (behind the endpoint service) and the internet.
  const internetRoutes = m.routes.filter((r) => r.targetKind === 'internet-gateway' || r.targetKind === 'nat-gateway');
  const vendor: Box = { id: 'vendor', label: 'vendor account', sub: clip(m.endpoints.find((e) => e.thirdParty)?.service ?? 'no link', 40), groups: new Set(), x: 960, y: 130, w: 250, h: 60, fill: '#f6dede' };
  const internet: Box = { id: 'internet', label: 'internet', sub: internetRoutes.length ? `${internetRoutes.length} route(s) out` : 'no route from the plane', groups: new Set(), x: 960, y: Math.max(260, height - 120), w: 250, h: 60, fill: internetRoutes.length ? '#ffd9a8' : '#ffffff' };

  // Lines: every egress rule between two boxes' security groups (or to the S3 prefix list: the gateway endpoint).
  const lines = new Set<string>();
  const all = [...boxes];
  const gateway = all.find((b) => b.sub === 'Gateway endpoint');
  // Lines into the AWS endpoints are counted, not drawn: nearly every box reaches them, on 443.
  const toAws = new Set<string>();
  for (const r of m.rules.filter((x) => x.direction === 'egress' && !x.matchesNothing && x.group)) {
    const from = all.filter((b) => b.groups.has(r.group!));
    const to = r.peerGroup ? all.filter((b) => b.groups.has(r.peerGroup!)) : r.peerKind === 'prefix-list' && gateway ? [gateway] : [];
    for (const f of from) {
      for (const t of to) {
        if (f === t) continue;
        if (t.id.startsWith('ep-')) toAws.add(f.id);
        else lines.add(`${f.id}>${t.id}`);
      }
    }
  }
  rowTitles[awsTitle] = { ...rowTitles[awsTitle], text: `VPC endpoints (AWS services), reached by ${toAws.size} of the boxes above (lines not drawn)` };
  const byId = new Map(all.map((b) => [b.id, b]));
  const center = (b: Box) => ({ x: b.x + b.w / 2, y: b.y + b.h / 2 });
  const line = (f: Box, t: Box, cls: string) => {
    const p = center(f);
    const q = center(t);
    return `<line x1="${p.x.toFixed(0)}" y1="${(p.y + f.h / 2 - 2).toFixed(0)}" x2="${q.x.toFixed(0)}" y2="${(q.y - t.h / 2 + 2).toFixed(0)}" class="${cls}" marker-end="url(#arrow)"/>`;
  };
  const svgLines = [...lines].map((k) => { const [f, t] = k.split('>'); return line(byId.get(f)!, byId.get(t)!, 'edge'); });
  const link = boxes.filter((b) => b.id.startsWith('link-'));
  // The link leaves the VPC below the boxes, runs along the account's edge, and meets the vendor's box.
  const outer = link.map((b) => `<polyline points="${(b.x + b.w).toFixed(0)},${b.y + b.h / 2} ${inner + 5},${b.y + b.h / 2} ${inner + 5},${vendor.y + vendor.h / 2} ${vendor.x},${vendor.y + vendor.h / 2}" fill="none" class="link" marker-end="url(#arrow)"/>`);
  const box = (b: Box) => `<g><rect x="${b.x.toFixed(0)}" y="${b.y}" width="${b.w.toFixed(0)}" height="${b.h}" rx="6" fill="${b.fill}" stroke="#4a5670"/><text x="${(b.x + 8).toFixed(0)}" y="${b.y + 22}" class="t">${esc(b.label)}</text><text x="${(b.x + 8).toFixed(0)}" y="${b.y + 40}" class="s">${esc(b.sub)}</text></g>`;
  const vpc = a.ofType('AWS::EC2::VPC')[0];
  return [
    `<svg viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="diagram of the plane">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4a5670"/></marker>',
    '<style>.t{font:600 13px sans-serif;fill:#1d2330}.s{font:11px sans-serif;fill:#4a5670}.h{font:600 14px sans-serif;fill:#1d2f4f}.r{font:italic 11px sans-serif;fill:#5a6475}.edge{stroke:#7d8aa3;stroke-width:1;opacity:.55}.link{stroke:#b33a3a;stroke-width:2.5}</style></defs>',
    `<rect x="20" y="20" width="${inner + 20}" height="${height - 40}" rx="10" fill="#fbfcfe" stroke="#1d2f4f" stroke-width="2"/>`,
    `<text x="36" y="44" class="h">${esc(settings.customerId ? `customer account: plane of ${settings.customerId}` : 'this account')}</text>`,
    `<rect x="40" y="56" width="${inner - 20}" height="${height - 90}" rx="8" fill="none" stroke="#7d8aa3" stroke-dasharray="6 4"/>`,
    `<text x="52" y="76" class="s">${esc(vpc ? `VPC ${a.show(vpc.props.CidrBlock, vpc.template)}, ${a.ofType('AWS::EC2::Subnet').length} subnets, ${m.routes.length} routes, ${m.rules.length} security-group rules` : 'existing VPC')}</text>`,
    ...rowTitles.map((t) => `<text x="60" y="${t.y}" class="r">${esc(t.text)}</text>`),
    ...svgLines,
    ...boxes.map(box),
    box(vendor), box(internet),
    ...outer,
    internetRoutes.length ? `<line x1="${inner + 40}" y1="${internet.y + 30}" x2="${internet.x}" y2="${internet.y + 30}" class="link" marker-end="url(#arrow)"/>` : `<text x="${internet.x}" y="${internet.y + 80}" class="r">no internet or NAT gateway route in the templates</text>`,
    '</svg>',
  ].join('\n');
}
