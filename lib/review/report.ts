import { BOUNDARY_CONTRACT, BoundaryContract, contractHash, Direction, Field, kindsFor, MessageKind, subjectOf } from '../boundary-contract';
import { contractOfTemplate, ContractRecord, CONTRACT_METADATA } from '../contract-input';
import { leakageBound } from '../leakage';
import { NEVER_CROSS } from '../nats-config';
import { Release } from '../bundle';
import { Assembly, Resource } from './assembly';
import { diagram } from './diagram';
import { Block, code, Inline, plural, ReportDocument, Row, Section, Text } from './document';
import { admitsOutside, isWildcard, Model, Role, SecurityGroupRule, Statement, statementHasWildcard, Workload } from './model';

/** What a bundle adds to the report: its release file, and whether its signature was checked. */
export interface ReleaseInfo {
  readonly release: Release;
  readonly bundle: string;
  /** Set when the bundle was verified against a public key: its fingerprint. */
  readonly verifiedWith?: string;
  /** The images the assembly's templates run (to compare with the release's list). */
  readonly assemblyImages: readonly string[];
}

const PUBLIC_ENTRY_TYPES: Record<string, string> = {
  'AWS::EC2::InternetGateway': 'internet gateway',
  'AWS::EC2::EgressOnlyInternetGateway': 'egress-only internet gateway',
  'AWS::EC2::EIP': 'Elastic IP address',
  'AWS::EC2::VPCPeeringConnection': 'VPC peering connection',
  'AWS::EC2::TransitGatewayAttachment': 'transit gateway attachment',
  'AWS::EC2::VPNGateway': 'VPN gateway',
  'AWS::EC2::VPCEndpointService': 'VPC endpoint service (others may connect to it)',
  'AWS::ElasticLoadBalancing::LoadBalancer': 'classic load balancer',
  'AWS::ApiGateway::RestApi': 'API Gateway REST API',
  'AWS::ApiGatewayV2::Api': 'API Gateway HTTP/WebSocket API',
  'AWS::Lambda::Url': 'Lambda function URL',
  'AWS::CloudFront::Distribution': 'CloudFront distribution',
  'AWS::AppRunner::Service': 'App Runner service',
};

const READ_VERB = /^(Get|Describe|List|BatchGet|BatchCheck|Read|Query|Scan|Select|ClientMount|Decrypt|Verify|Download|Lookup|Search|View|Receive)/;

/** `read`, `write` or `both` for one IAM action (by its verb). */
export function accessOf(action: string): 'read' | 'write' | 'both' {
  const [service, verb = ''] = action.split(':');
  if (action === '*' || verb === '*' || (service === 'rds-db' && verb === 'connect')) return 'both';
  return READ_VERB.test(verb) ? 'read' : 'write';
}

/** An ARN shortened to what tells resources apart: `secret {Plane/Data/Secret-llm-primary}`, `dbuser:{…}/agent_x`. */
function shortResource(s: string): string {
  const plain = s.replace(/\$\{AWS::(\w+)\}/g, '<$1>');
  const m = /^arn:[^:]*:([^:]*):[^:]*:[^:]*:(.*)$/.exec(plain);
  return m ? `${m[1]} ${m[2]}` : s;
}

function labelOfRef(a: Assembly, shown: string, refers: readonly Resource[]): string {
  // `{Plane/Data/Secret-llm-primary}` → the secret's name, where the template gives one.
  return shown.replace(/\{([^}]+)\}/g, (whole, p) => {
    const r = refers.find((x) => a.shortPath(x) === p);
    return r && a.label(r) !== p ? a.label(r) : whole;
  });
}

/** One workload's permissions, split by access, each as `actions on resources (conditions)`. */
function accessSummary(a: Assembly, role: Role | undefined): { read: string[]; write: string[]; wild: boolean } {
  const read: string[] = [];
  const write: string[] = [];
  let wild = false;
  for (const s of role?.statements ?? []) {
    if (s.effect !== 'Allow') continue;
    wild ||= statementHasWildcard(s);
    const resources = s.resources.map((r) => labelOfRef(a, shortResource(r), s.refers)).join(', ');
    const via = s.conditions.filter((c) => /AccessPointArn|ViaService/.test(c)).map((c) => labelOfRef(a, shortResource(c.split(' = ')[1]), s.refers));
    for (const kind of ['read', 'write'] as const) {
      const actions = s.actions.filter((x) => accessOf(x) === kind || accessOf(x) === 'both');
      if (actions.length) (kind === 'read' ? read : write).push(`${actions.join(', ')} on ${resources}${via.length ? ` (via ${via.join(', ')})` : ''}`);
    }
  }
  return { read, write, wild };
}

const statementRow = (who: string, s: Statement, data: Record<string, string>): Row => ({
  cells: [
    who,
    s.effect,
    s.notActions.length ? ['NotAction ', ...s.notActions.map(code)] : join(s.actions.map(code)),
    s.notResources.length ? ['NotResource ', ...s.notResources.map(code)] : join(s.resources.map(code)),
    join(s.conditions.map(code)),
    code(s.source),
  ],
  warn: statementHasWildcard(s),
  data,
});

function join(items: Inline[], sep = ', '): Inline[] {
  return items.flatMap((x, i) => (i ? [sep, x] : [x]));
}

const ruleFromTo = (r: SecurityGroupRule) => (r.direction === 'ingress' ? { from: r.peer, to: r.groupLabel } : { from: r.groupLabel, to: r.peer });

/** The boundary contract's field as one phrase. */
function describeField(f: Field): string {
  switch (f.type) {
    case 'id': return `id /${f.pattern}/ ≤${f.maxLength}`;
    case 'enum': return `one of ${f.values.join(', ')}`;
    case 'integer': return `integer ${f.minimum}..${f.maximum}`;
    case 'number': return `number ${f.minimum}..${f.maximum}`;
    case 'array': return `list ≤${f.maxItems} of ${describeField(f.items)}`;
    case 'object': return `{ ${Object.entries(f.fields).map(([k, v]) => `${k}${f.required.includes(k) ? '' : '?'}: ${describeField(v)}`).join('; ')} }`;
  }
}

/** The settings the templates were synthesized with, read from what they deploy. */
function planeSettings(m: Model): {
  customerId?: string; shareLearning?: boolean; leafConfig?: string; gateway?: Workload; leaf?: Workload;
  /** The contract the templates record (`Byoc::BoundaryContract`), else the kit's own; `recorded` says which. */
  contract: BoundaryContract; recorded?: ContractRecord;
} {
  const a = m.assembly;
  const recorded = a.templates.filter((t) => !t.parent).map((t) => contractOfTemplate(t.body)).find((c) => c !== undefined);
  const contract = recorded?.contract ?? BOUNDARY_CONTRACT;
  const prefix = a.templates.filter((t) => !t.parent).map((t) => t.body.Outputs?.AgentSecretsPrefix?.Value).find((v) => typeof v === 'string');
  const customerId = typeof prefix === 'string' ? /^byoc\/([^/]+)\/$/.exec(prefix)?.[1] : undefined;
  const gateway = m.workloads.find((w) => w.environment.BYOC_SHARE_LEARNING !== undefined);
  const leaf = m.workloads.find((w) => w.environment.BYOC_NATS_CONFIG !== undefined && w.environment.BYOC_NATS_CONFIG.includes('leafnodes'));
  const share = gateway?.environment.BYOC_SHARE_LEARNING;
  return { customerId, shareLearning: share === undefined ? undefined : share === 'true', leafConfig: leaf?.environment.BYOC_NATS_CONFIG, gateway, leaf, contract, recorded };
}

const rows = (items: Row[]): Row[] => items;

export function buildReport(m: Model, release?: ReleaseInfo): ReportDocument {
  const a = m.assembly;
  const roots = a.templates.filter((t) => !t.parent);
  const settings = planeSettings(m);
  const sections: Section[] = [
    questions(m, settings),
    iamSection(m),
    networkSection(m),
    contractSection(settings),
    dataSection(m),
    findingsSection(m),
    { id: 'diagram', title: 'Diagram', blocks: [{ svg: diagram(m, settings), caption: 'The plane and its link, drawn from the templates: every VPC endpoint, workload group, data store and path out' }] },
    ...(release ? [releaseSection(release)] : []),
    {
      id: 'sources', title: 'Sources',
      blocks: [
        { p: `Generated by byoc review from the cloud assembly ${a.dir}: ${plural(a.templates.length, 'template')} (${plural(roots.length, 'root stack')}, ${plural(a.templates.length - roots.length, 'nested stack')}), ${plural(a.resources.length, 'resource')}, ${settings.recorded ? `the boundary contract v${settings.contract.version} the templates record (${CONTRACT_METADATA})` : `the boundary contract v${settings.contract.version} compiled into this kit (the templates record none)`}, and ${a.validationReport ? 'validation-report.json' : 'no validation report'}.` },
        { table: { head: ['template', 'stack', 'parent', 'resources'], rows: a.templates.map((t) => ({ cells: [code(t.file), t.stack, t.parent ? code(`${t.parent.template.file}#${t.parent.logicalId}`) : '-', String(Object.keys(t.body.Resources ?? {}).length)] })) } },
      ],
    },
  ];
  const title = settings.customerId ? `Security review: customer plane of ${settings.customerId}` : `Security review: ${roots.map((t) => t.stack).join(', ')}`;
  return {
    title,
    subtitle: `${plural(m.roles.length, 'IAM role')}, ${plural(m.rules.length, 'security-group rule')}, ${plural(m.workloads.length, 'workload')}, ${plural(m.dataStores.length, 'data store')}, ${plural(m.acknowledgements.length, 'acknowledged finding')}${release ? `; release ${release.release.version}` : ''}. Every line below is read from the synthesized templates.`,
    sections,
  };
}

// Questions ---------------------------------------------------------------------------------------------------

function questions(m: Model, settings: ReturnType<typeof planeSettings>): Section {
  const a = m.assembly;
  const blocks: Block[] = [];
  const failed = m.validation.plugins.filter((p) => p.conclusion !== 'success');
  if (failed.length) {
    blocks.push({ p: [{ warn: `The last synth failed validation (${failed.map((p) => p.name).join(', ')}: ${plural(m.validation.findings.filter((f) => !f.acknowledged).length, 'violation')}, listed under validation results): these templates are not deployable as they are.` }] });
  }

  // 1. Can anything outside the account reach the plane?
  const entries = a.resources.filter((r) => PUBLIC_ENTRY_TYPES[r.type]);
  const lbs = a.ofType('AWS::ElasticLoadBalancingV2::LoadBalancer').filter((r) => (r.props.Scheme ?? 'internet-facing') === 'internet-facing');
  const publicSubnets = a.ofType('AWS::EC2::Subnet').filter((r) => r.props.MapPublicIpOnLaunch === true);
  const publicIps = m.workloads.filter((w) => w.publicIp);
  const cidrIngress = m.rules.filter((r) => r.direction === 'ingress' && (r.peerKind === 'cidr' || r.peerKind === 'prefix-list') && !r.matchesNothing);
  const openPolicies = m.resourcePolicies.flatMap((p) => p.statements.filter(admitsOutside).map((s) => ({ p, s })));
  const openTrust = m.roles.flatMap((r) => r.trust.filter((s) => s.effect === 'Allow' && s.principals.some((x) => !x.startsWith('service ')) && admitsOutside(s)).map((s) => ({ r, s })));
  const outsideItems: Text[] = [
    ...entries.map((r) => [`${PUBLIC_ENTRY_TYPES[r.type]} `, code(r.path)] as Inline[]),
    ...lbs.map((r) => ['internet-facing load balancer ', code(r.path)] as Inline[]),
    ...publicSubnets.map((r) => ['subnet giving public IPs ', code(r.path)] as Inline[]),
    ...publicIps.map((w) => ['public IP on ', code(w.resource.path)] as Inline[]),
    ...cidrIngress.map((r) => [`ingress from ${r.peer} to ${r.groupLabel} on ${r.protocol} ${r.ports} `, code(r.source)] as Inline[]),
    ...openPolicies.map(({ p, s }) => [`${p.kind} of ${a.shortPath(p.resource)} allows ${s.principals.join(', ')} ${s.actions.join(', ')}`] as Inline[]),
    ...openTrust.map(({ r, s }) => [`role ${a.shortPath(r.resource)} may be assumed by ${s.principals.join(', ')}`] as Inline[]),
  ];
  const serviceTrust = m.roles.flatMap((r) => r.trust.flatMap((s) => s.principals)).filter((p) => p.startsWith('service '));
  const trustWithoutAccount = m.roles.filter((r) => r.trust.some((s) => !s.conditions.some((c) => /aws:SourceAccount|aws:SourceArn/.test(c))));
  const thirdParty = m.endpoints.filter((e) => e.thirdParty);
  const linkIngress = m.rules.filter((r) => r.direction === 'ingress' && thirdParty.some((e) => e.securityGroups.includes(r.groupLabel)));
  blocks.push({
    question: {
      id: 'q-outside', q: 'Can anything outside the account reach the plane?',
      answer: outsideItems.length === 0
        ? `No. Nothing in the templates accepts a connection or a request from outside the account: no internet gateway, public subnet, public IP, internet-facing load balancer or public API, no security-group ingress from an address range, no resource policy or role trust that admits another account.`
        : `Yes, through ${plural(outsideItems.length, 'entry', 'entries')}: see the evidence.`,
      evidence: [
        { list: outsideItems.length ? outsideItems : [`Public entry points (${Object.values(PUBLIC_ENTRY_TYPES).join(', ')}, internet-facing load balancers): none of ${plural(a.resources.length, 'resource')}.`] },
        { p: `Subnets: ${plural(a.ofType('AWS::EC2::Subnet').length, 'subnet')}, ${publicSubnets.length} giving public IPs. Workloads with a public IP: ${publicIps.length} of ${m.workloads.filter((w) => w.kind !== 'function').length}. Security-group ingress rules: ${m.rules.filter((r) => r.direction === 'ingress').length}, ${cidrIngress.length} from an address range (the rest from another security group of the plane).` },
        { p: `Resource policies: ${plural(m.resourcePolicies.length, 'policy', 'policies')} (${[...new Set(m.resourcePolicies.map((p) => p.kind))].join(', ') || 'none'}); Allow statements admitting a principal outside the account without a condition that limits it to the account, its services or its network: ${openPolicies.length}.` },
        { p: `Role trust: ${plural(m.roles.length, 'role')}, assumable by ${[...new Set(serviceTrust)].join(', ') || 'no service'}${openTrust.length ? ` and ${openTrust.length} outside principals` : ' only'}; ${trustWithoutAccount.length === 0 ? 'every trust statement is limited to this account by aws:SourceAccount or aws:SourceArn' : `${plural(trustWithoutAccount.length, 'role')} without an aws:SourceAccount condition: ${trustWithoutAccount.map((r) => a.shortPath(r.resource)).join(', ')}`}.` },
        ...(thirdParty.length ? [{ p: [`The link to the vendor is ${plural(thirdParty.length, 'interface endpoint')} in the plane (`, ...join(thirdParty.map((e) => code(e.service))), `): PrivateLink carries connections from the endpoint's side to the service, never back, and the endpoint admits ${linkIngress.map((r) => `${r.peer} on ${r.protocol} ${r.ports}`).join(', ') || 'nothing'}.`] } as Block] : []),
      ],
    },
  });

  // 2. Can the plane reach the internet, and through what?
  const internetRoutes = m.routes.filter((r) => r.targetKind === 'internet-gateway' || r.targetKind === 'nat-gateway');
  const nats = a.ofType('AWS::EC2::NatGateway');
  const cidrEgress = m.rules.filter((r) => r.direction === 'egress' && r.peerKind === 'cidr' && !r.matchesNothing);
  const anywhereEgress = cidrEgress.filter((r) => r.anywhere);
  blocks.push({
    question: {
      id: 'q-internet', q: 'Can the plane reach the internet, and through what?',
      answer: internetRoutes.length === 0
        ? `No. No route table has a route to an internet or NAT gateway; traffic leaves the VPC only through its ${plural(m.endpoints.length, 'VPC endpoint')}: ${m.endpoints.map((e) => e.service.replace(/^com\.amazonaws\.\$\{AWS::Region\}\./, '')).join(', ')}.`
        : `Yes: ${plural(internetRoutes.length, 'route')} to ${[...new Set(internetRoutes.map((r) => r.targetKind.replace('-', ' ')))].join(' and ')}s (${plural(nats.length, 'NAT gateway')}); security groups allow ${anywhereEgress.length ? `${plural(anywhereEgress.length, 'rule')} to anywhere (${anywhereEgress.map((r) => `${r.groupLabel} ${r.protocol} ${r.ports}`).join('; ')})` : 'no rule to anywhere'} and ${plural(cidrEgress.length - anywhereEgress.length, 'rule')} to other address ranges.`,
      evidence: [
        { table: { head: ['route table', 'destination', 'target', 'kind', 'construct path'], rows: m.routes.map((r) => ({ cells: [code(r.routeTable), code(r.destination), code(r.target), r.targetKind, code(r.source)], warn: r.targetKind === 'internet-gateway' || r.targetKind === 'nat-gateway' })) } },
        { p: `Egress rules to address ranges: ${cidrEgress.length ? cidrEgress.map((r) => `${r.groupLabel} → ${r.peer} ${r.protocol} ${r.ports}`).join('; ') : 'none'} (${plural(m.rules.filter((r) => r.direction === 'egress' && r.matchesNothing).length, 'group')} with CDK's rule that matches no traffic, i.e. no egress at all). Every other egress rule names a security group or the S3 prefix list of the gateway endpoint.` },
        { p: `Internet and NAT gateways in the templates: ${a.ofType('AWS::EC2::InternetGateway', 'AWS::EC2::NatGateway', 'AWS::EC2::EgressOnlyInternetGateway').map((r) => r.path).join(', ') || 'none'}.` },
      ],
    },
  });

  // 3. What can the vendor reach, and how?
  const images = new Map<string, string[]>();
  for (const w of m.workloads) for (const i of w.images) images.set(i, [...(images.get(i) ?? []), w.name]);
  const inbound = settings.contract.kinds.filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER);
  const receivers = (k: MessageKind) => m.workloads.filter((w) => w.subjects?.subscribe.some((s) => s === `boundary.inbox.${k.name}`)).map((w) => w.name);
  const remote = settings.leafConfig ? /remotes:\s*\[[\s\S]*?url:\s*"([^"]+)"[\s\S]*?deny_imports:\s*\[([^\]]*)\][\s\S]*?deny_exports:\s*\[([^\]]*)\]/.exec(settings.leafConfig) : null;
  const db = databaseAnswer(m);
  blocks.push({
    question: {
      id: 'q-vendor', q: 'What can the vendor reach, and how?',
      answer: thirdParty.length === 0 && images.size === 0
        ? 'Nothing: the templates run no image and hold no link to another account.'
        : `Three things, each bounded: the images it builds run as the plane's workloads (${plural(images.size, 'image')}, ${[...images.keys()].every((i) => /@sha256:[0-9a-f]{64}$/.test(i)) ? 'every one pinned by digest' : 'NOT all pinned by digest'}); it may send ${plural(inbound.length, 'kind')} of control message (${inbound.map((k) => k.name).join(', ')}) through the boundary gateway, closed schemas with no free text; and the link is ${thirdParty.length ? `${plural(thirdParty.length, 'connection')} the plane opens to it` : 'absent'}. It holds no IAM access to the account and no network path into it.`,
      evidence: [
        { table: { head: ['image (what runs)', 'registry account', 'pinned by digest', 'workloads'], rows: [...images].map(([i, ws]) => ({ cells: [code(i), /^(\d{12})\.dkr\.ecr\./.exec(i)?.[1] ?? '-', /@sha256:[0-9a-f]{64}$/.test(i) ? 'yes' : 'NO', `${ws.length}: ${ws.join(', ')}`], warn: !/@sha256:[0-9a-f]{64}$/.test(i) })) } },
        { table: { head: ['message kind the vendor may send', 'subject', 'fields', 'rate limit', 'received by'], rows: inbound.map((k) => ({ cells: [k.name, code(settings.customerId ? subjectOf(k, settings.customerId) : `byoc.<customer>.in.${k.name}`), describeField(k.schema), `${+k.rateLimit.perSecond.toPrecision(3)}/s, burst ${k.rateLimit.burst}`, receivers(k).join(', ') || 'no workload'] })) } },
        { p: remote ? ['The leaf node dials ', code(remote[1]), ` (the only remote of its configuration, in the task definition's BYOC_NATS_CONFIG), denying both ways: ${remote[2].replace(/"/g, '').trim()}.`] : 'No NATS leaf configuration in the templates.' },
        { p: `Link endpoint admits: ${linkIngress.map((r) => `${r.peer} → ${r.groupLabel} ${r.protocol} ${r.ports}`).join('; ') || 'nothing'}.` },
      ],
    },
  });
  blocks.push({ question: { id: 'q-database', q: 'Can the vendor reach my database?', answer: db.answer, evidence: db.evidence } });

  // 4. What leaves the account, and can I turn it off?
  const outbound = settings.contract.kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR);
  const share = { shareLearning: settings.shareLearning ?? true };
  const crossing = new Set(kindsFor(share, settings.contract).map((k) => k.name));
  const bound = leakageBound(kindsFor(share, settings.contract), share);
  // Who else may open a connection to the vendor's endpoint (the leaf's NATS link aside): anything sent there leaves too.
  const toVendor = m.rules.filter((r) => r.direction === 'egress' && r.peerGroup && thirdParty.some((e) => e.securityGroups.includes(a.shortPath(r.peerGroup!))));
  const vendorPaths = toVendor.map((r) => `${(r.group && m.members.get(r.group)?.join(', ')) || r.groupLabel} on ${r.protocol} ${r.ports}`);
  const allowedHere = (k: MessageKind) => (settings.leafConfig ? settings.leafConfig.includes(`.out.${k.name}`) : crossing.has(k.name));
  blocks.push({
    question: {
      id: 'q-leaves', q: 'What leaves the account, and can I turn it off?',
      answer: `Through the link, only ${outbound.filter(allowedHere).map((k) => k.name).join(', ')} messages (metadata in closed schemas, at most ${bound.outboundBitsPerSecond.toFixed(1)} bits/s sustained); ${outbound.filter((k) => k.optOut).map((k) => `${k.name} can be turned off (shareLearning: false; ${allowedHere(k) ? 'on' : 'off'} in these templates)`).join(', ') || 'none can be turned off'}, the others are the service's metadata and cannot. ${toVendor.length ? `Connections to the vendor's endpoint: ${vendorPaths.join('; ')}; what those send leaves the account too. ` : ''}${internetRoutes.length ? 'The plane also has a route to the internet (see above).' : 'Nothing else has a route out of the account\'s AWS services.'}`,
      evidence: [
        { table: { head: ['kind', 'subject', 'opt-out', 'in these templates', 'max bytes', 'rate limit', 'sent by'], rows: outbound.map((k) => ({ cells: [k.name, code(settings.customerId ? subjectOf(k, settings.customerId) : `byoc.<customer>.out.${k.name}`), k.optOut ? 'yes (shareLearning: false)' : 'no', allowedHere(k) ? 'allowed by the leaf' : 'absent', String(k.maxBytes), `${+k.rateLimit.perSecond.toPrecision(3)}/s, burst ${k.rateLimit.burst}`, m.workloads.filter((w) => w.subjects?.publish.includes(`boundary.outbox.${k.name}`)).map((w) => w.name).join(', ') || '-'] })) } },
        { p: `Gateway setting in the templates: BYOC_SHARE_LEARNING=${settings.gateway?.environment.BYOC_SHARE_LEARNING ?? '(no gateway)'}. Leakage bound for these settings: ${bound.outboundBitsPerSecond.toFixed(1)} bits/s out, ${bound.inboundBitsPerSecond.toFixed(1)} bits/s in (lib/leakage.ts, from the contract's schemas and rate limits).` },
        { p: 'Out of the VPC through its endpoints, to AWS services in the region and the vendor link, as far as each endpoint\'s policy allows:' },
        { list: m.endpoints.map((e) => [code(e.service), ` (${e.type}${e.thirdParty ? ', another account\'s endpoint service' : ''}): `, ...join(e.statements.filter((s) => s.effect === 'Allow').map((s) => code(`${s.actions.join(',')} on ${s.resources.join(',')}${s.conditions.length ? ` if ${s.conditions.join(' and ')}` : ''}`)), '; '), ...(e.statements.length ? [] : ['no endpoint policy (the service\'s default: full access)'])] as Inline[]) },
      ],
    },
  });
  return { id: 'questions', title: 'Questions answered first', blocks };
}

function databaseAnswer(m: Model): { answer: Text; evidence: Block[] } {
  const a = m.assembly;
  const dbs = a.ofType('AWS::RDS::DBInstance', 'AWS::RDS::DBCluster');
  if (dbs.length === 0) return { answer: 'There is no database in these templates.', evidence: [] };
  const dbGroups = dbs.flatMap((d) => (d.props.VPCSecurityGroups ?? []).map((g: any) => a.target(g, d.template)?.resource)).filter((x): x is Resource => !!x);
  const ingress = m.rules.filter((r) => r.direction === 'ingress' && r.group && dbGroups.includes(r.group));
  const fromRanges = ingress.filter((r) => r.peerKind !== 'security-group');
  const clientGroups = ingress.map((r) => r.peerGroup).filter((x): x is Resource => !!x);
  const clients = [...new Set(clientGroups.flatMap((g) => m.members.get(g) ?? []))];
  const thirdParty = m.endpoints.filter((e) => e.thirdParty);
  const linkGroups = new Set(thirdParty.flatMap((e) => e.securityGroups));
  const linkInDb = clientGroups.filter((g) => linkGroups.has(a.shortPath(g)));
  const dbRoles = m.roles.filter((r) => r.statements.some((s) => s.effect === 'Allow' && (s.actions.some((x) => /^rds-db:|^rds-data:|^rds:\*$|^\*$/.test(x)) || s.refers.some((x) => dbs.includes(x)))));
  const outsideTrust = dbRoles.filter((r) => r.trust.some(admitsOutside));
  const vendorImages = new Set(m.workloads.filter((w) => w.taskRole && dbRoles.includes(w.taskRole)).flatMap((w) => w.images));
  const loginAgents = m.workloads.filter((w) => w.taskRole && dbRoles.includes(w.taskRole) && w.images.length > 0);
  const serviceOnly = dbRoles.every((r) => r.trust.every((s) => s.principals.every((p) => p.startsWith('service ')) && s.conditions.some((c) => /aws:SourceAccount|aws:SourceArn/.test(c))));
  const reachable = fromRanges.length > 0 || linkInDb.length > 0 || outsideTrust.length > 0;
  const answer: Text = reachable
    ? [{ warn: 'Possibly. ' }, `${fromRanges.length ? `The database admits address ranges (${fromRanges.map((r) => r.peer).join(', ')}). ` : ''}${linkInDb.length ? 'The vendor link\'s endpoint group is among its clients. ' : ''}${outsideTrust.length ? `Roles with database access trust outside principals (${outsideTrust.map((r) => a.shortPath(r.resource)).join(', ')}).` : ''}`]
    : `No network path and no IAM permission lets the vendor reach it. ${plural(dbs.length, 'database')} (${dbs.map((d) => a.label(d)).join(', ')}) admit${dbs.length === 1 ? 's' : ''} connections only from ${plural(clientGroups.length, 'security group')} of the plane (${clientGroups.map((g) => a.shortPath(g)).join(', ')}), whose members are ${plural(clients.length, 'workload')} inside the VPC; the vendor's link is an endpoint the plane dials out through and is not among them. Only ${plural(dbRoles.length, 'role')} of this account may log in or read its secrets, ${serviceOnly ? 'each assumable only by an AWS service acting for this account (aws:SourceAccount)' : 'not all of them limited to an AWS service acting for this account (see the roles below)'}. What does run next to it is the vendor's code: ${plural(vendorImages.size, 'image')} of the signed release run${vendorImages.size === 1 ? 's' : ''} as the ${plural(loginAgents.length, 'workload')} that log in, so the database is as safe as that verified code.`;
  return {
    answer,
    evidence: [
      { table: { head: ['database', 'engine', 'IAM authentication', 'publicly accessible', 'security groups'], rows: dbs.map((d) => ({ cells: [code(d.path), `${d.props.Engine ?? ''} ${d.props.EngineVersion ?? ''}`, String(d.props.EnableIAMDatabaseAuthentication === true), String(d.props.PubliclyAccessible === true), (d.props.VPCSecurityGroups ?? []).map((g: any) => a.show(g, d.template)).join(', ')] })) } },
      { table: { head: ['from', 'to', 'port', 'members of the source group'], rows: ingress.map((r) => ({ cells: [r.peer, r.groupLabel, `${r.protocol} ${r.ports}`, r.peerGroup ? (m.members.get(r.peerGroup) ?? []).join(', ') : r.peer], warn: r.peerKind !== 'security-group' })) } },
      { table: { head: ['role with database access', 'trusted principal', 'used by', 'statements on the database'], rows: dbRoles.map((r) => ({ cells: [code(r.resource.path), r.trust.map((s) => `${s.principals.join(', ')}${s.conditions.length ? ` if ${s.conditions.join(' and ')}` : ''}`).join('; '), r.usedBy.join(', '), join(r.statements.filter((s) => s.actions.some((x) => /^rds/.test(x)) || s.refers.some((x) => dbs.includes(x))).map((s) => code(`${s.actions.join(',')} on ${s.resources.join(',')}`)), '; ')] })) } },
    ],
  };
}

// IAM -----------------------------------------------------------------------------------------------------------

function iamSection(m: Model): Section {
  const a = m.assembly;
  const statements = m.roles.flatMap((r) => r.statements.map((s) => ({ r, s })));
  const wild = statements.filter(({ s }) => statementHasWildcard(s));
  const reachOf = (w: Workload) => [...new Set(m.rules.filter((r) => r.direction === 'egress' && r.group && w.securityGroups.includes(r.group) && !r.matchesNothing)
    .map((r) => `${r.peer.replace(/SecurityGroup$/, '')} ${r.ports}`))].join(', ');
  return {
    id: 'iam', title: 'IAM',
    blocks: [
      { p: `${plural(m.roles.length, 'role')}, ${plural(statements.length, 'permission statement')}, ${plural(wild.length, 'with a wildcard', 'with a wildcard')} (highlighted). Every role's trust and every statement are listed with the construct path of the policy that holds them.` },
      { p: 'Per workload, one row: what its task (or function) role may read and write, where its security groups let it connect, and its NATS subjects.' },
      {
        table: {
          id: 'per-agent',
          head: ['workload', 'kind', 'may read', 'may write', 'may connect to', 'NATS subscribe', 'NATS publish'],
          rows: m.workloads.map((w) => {
            const acc = accessSummary(a, w.taskRole);
            return {
              cells: [{ strong: w.name }, `${w.kind}${w.trigger ? ` (${w.trigger})` : ''}`, join(acc.read.map(code), '; '), join(acc.write.map(code), '; '), reachOf(w), (w.subjects?.subscribe ?? []).join(', '), (w.subjects?.publish ?? []).join(', ')],
              warn: acc.wild,
              data: { workload: w.name },
            };
          }),
        },
      },
      {
        table: {
          id: 'roles',
          head: ['role', 'description', 'who can assume it', 'used by', 'statements', 'wildcards'],
          rows: m.roles.map((r) => ({
            cells: [code(r.resource.path), r.description ?? '', join(r.trust.map((s) => code(`${s.principals.join(', ')}${s.conditions.length ? ` if ${s.conditions.join(' and ')}` : ''}`)), '; '),
              r.usedBy.join(', ') || '-', `${r.statements.length}${r.managedPolicyArns.length ? ` + managed ${r.managedPolicyArns.join(', ')}` : ''}`, String(r.statements.filter(statementHasWildcard).length)],
            warn: r.statements.some(statementHasWildcard),
            data: { role: `${r.resource.template.file}#${r.resource.logicalId}` },
          })),
        },
      },
      { p: 'Every permission statement:' },
      { table: { id: 'statements', head: ['role', 'effect', 'actions', 'resources', 'conditions', 'policy (construct path)'], rows: statements.map(({ r, s }) => statementRow(a.shortPath(r.resource), s, { statement: r.resource.logicalId })) } },
      { p: 'Resource policies (who may use a resource, written on the resource):' },
      { table: { id: 'resource-policies', head: ['resource', 'effect', 'principals / actions', 'resources', 'conditions', 'construct path'], rows: m.resourcePolicies.flatMap((p) => p.statements.map((s) => ({ ...statementRow(`${p.kind} of ${a.shortPath(p.resource)}`, s, {}), cells: [`${p.kind} of ${a.shortPath(p.resource)}`, s.effect, [s.principals.join(', '), ': ', ...join(s.actions.map(code))], join(s.resources.map(code)), join(s.conditions.map(code)), code(s.source)], warn: admitsOutside(s) }))) } },
      { p: ['Wildcards: ', ...(wild.length ? join(wild.map(({ r, s }) => code(`${a.shortPath(r.resource)}: ${s.actions.filter(isWildcard).concat(s.resources.filter(isWildcard)).join(', ') || 'NotAction/NotResource'}`)), '; ') : ['none'])] },
    ],
  };
}

// Network -------------------------------------------------------------------------------------------------------

function networkSection(m: Model): Section {
  const a = m.assembly;
  const vpcs = a.ofType('AWS::EC2::VPC');
  const subnets = a.ofType('AWS::EC2::Subnet');
  const assoc = a.ofType('AWS::EC2::SubnetRouteTableAssociation');
  const paths: Text[] = [
    ...m.endpoints.map((e) => [`${e.type} endpoint `, code(e.service), ` (${e.thirdParty ? 'another account\'s endpoint service: the vendor link' : 'an AWS service in the region'}), reached by `,
      m.rules.filter((r) => r.direction === 'egress' && (e.securityGroups.includes(r.peer) || (e.type === 'Gateway' && r.peerKind === 'prefix-list'))).map((r) => `${r.groupLabel} ${r.ports}`).join(', ') || 'no egress rule'] as Inline[]),
    ...m.routes.filter((r) => r.targetKind !== 'vpc-endpoint').map((r) => [`route ${r.destination} → ${r.target} (${r.targetKind})`] as Inline[]),
  ];
  return {
    id: 'network', title: 'Network',
    blocks: [
      { p: `${plural(vpcs.length, 'VPC')} (${vpcs.map((v) => `${a.shortPath(v)} ${a.show(v.props.CidrBlock, v.template)}`).join(', ') || 'an existing VPC'}), ${plural(subnets.length, 'subnet')}, ${plural(m.routes.length, 'route')}, ${plural(m.securityGroups.length, 'security group')} with ${plural(m.rules.length, 'rule')}, ${plural(m.endpoints.length, 'VPC endpoint')}.` },
      { table: { id: 'subnets', head: ['subnet', 'CIDR', 'availability zone', 'public IP on launch', 'route table'], rows: subnets.map((s) => ({ cells: [code(s.path), a.show(s.props.CidrBlock, s.template), a.show(s.props.AvailabilityZone, s.template), String(s.props.MapPublicIpOnLaunch === true), assoc.filter((x) => a.target(x.props.SubnetId, x.template)?.resource === s).map((x) => a.show(x.props.RouteTableId, x.template)).join(', ')], warn: s.props.MapPublicIpOnLaunch === true })) } },
      { p: 'Routes (besides each route table\'s local route for the VPC):' },
      { table: { id: 'routes', head: ['route table', 'destination', 'target', 'kind', 'construct path'], rows: m.routes.map((r) => ({ cells: [code(r.routeTable), code(r.destination), code(r.target), r.targetKind, code(r.source)], warn: r.targetKind === 'internet-gateway' || r.targetKind === 'nat-gateway' })) } },
      { p: 'Security groups and their members:' },
      { table: { id: 'security-groups', head: ['security group', 'description', 'members'], rows: m.securityGroups.map((g) => ({ cells: [code(g.path), String(g.props.GroupDescription ?? ''), (m.members.get(g) ?? []).join(', ') || '-'] })) } },
      { p: 'Every security-group rule, from → to:' },
      {
        table: {
          id: 'sg-rules', head: ['from', 'to', 'protocol', 'ports', 'description', 'rule (construct path)'],
          rows: m.rules.map((r) => {
            const { from, to } = ruleFromTo(r);
            return {
              cells: r.matchesNothing
                ? [r.groupLabel, { strong: 'nothing' }, r.protocol, r.ports, `${r.description}: CDK's rule matching no traffic (${r.peer}), so the group has no egress`, code(r.source)]
                : [from, to, r.protocol, r.ports, r.description, code(r.source)],
              warn: r.anywhere,
              data: { rule: r.key, direction: r.direction },
            };
          }),
        },
      },
      { p: 'VPC endpoints and their policies:' },
      { table: { id: 'endpoints', head: ['service', 'type', 'private DNS', 'security groups', 'policy (Allow statements)', 'construct path'], rows: m.endpoints.map((e) => ({ cells: [code(e.service), e.type, String(e.privateDns), e.securityGroups.join(', ') || '-', e.statements.length ? join(e.statements.map((s) => code(`${s.effect} ${s.principals.join(',')} ${s.actions.join(',')} on ${s.resources.join(',')}${s.conditions.length ? ` if ${s.conditions.join(' and ')}` : ''}`)), '; ') : 'none: full access through the endpoint', code(e.resource.path)] })) } },
      { p: 'Every path out of the VPC:' },
      { list: paths.length ? paths : ['none'] },
    ],
  };
}

// Contract ------------------------------------------------------------------------------------------------------

function contractSection(settings: ReturnType<typeof planeSettings>): Section {
  const hash = contractHash(settings.contract);
  const inTemplates = settings.leafConfig ? /boundary contract v(\d+) \(([0-9a-f]{64})\)/.exec(settings.leafConfig) : null;
  const share = { shareLearning: settings.shareLearning ?? true };
  const crossing = new Set(kindsFor(share, settings.contract).map((k) => k.name));
  const gatewayHash = settings.gateway?.environment.BYOC_CONTRACT_HASH;
  return {
    id: 'contract', title: 'What crosses the plane boundary',
    blocks: [
      { p: [`Boundary contract v${settings.contract.version}, hash `, code(hash),
        settings.recorded ? ` (recorded in the templates' metadata, ${CONTRACT_METADATA}${hash === contractHash() ? ': the contract of this kit' : ': the vendor\'s own, not the contract of this kit'})` : ' (the templates record none: the contract compiled into this kit)',
        !inTemplates ? '; the templates hold no leaf configuration naming a contract'
          : inTemplates[2] === hash ? '; the leaf configuration in the templates was generated from this same contract'
            : { warn: `; the templates' leaf configuration names contract v${inTemplates[1]} ${inTemplates[2]}, not this one` },
        gatewayHash === undefined ? '.' : gatewayHash === hash ? '; the boundary gateway enforces this same contract (BYOC_CONTRACT_HASH).' : { warn: `; the boundary gateway is given contract ${gatewayHash}, not this one.` }] },
      {
        table: {
          id: 'kinds', head: ['kind', 'direction', 'subject', 'schema (closed)', 'max bytes', 'rate limit', 'opt-out', 'crosses with these templates\' settings'],
          rows: settings.contract.kinds.map((k) => ({ cells: [{ strong: k.name }, k.direction, code(settings.customerId ? subjectOf(k, settings.customerId) : `byoc.<customer>.${k.direction === Direction.CUSTOMER_TO_VENDOR ? 'out' : 'in'}.${k.name}`), describeField(k.schema), String(k.maxBytes), `${+k.rateLimit.perSecond.toPrecision(3)}/s, burst ${k.rateLimit.burst}`, k.optOut ? 'yes' : 'no', crossing.has(k.name) ? `yes${share.shareLearning === false && k.revealsShape?.length ? ` (without ${k.revealsShape.join(', ')})` : ''}` : 'no'] })),
        },
      },
      { p: ['Never crossing, whatever else is allowed: ', ...join(NEVER_CROSS.map(code))] },
    ],
  };
}

// Data ----------------------------------------------------------------------------------------------------------

function dataSection(m: Model): Section {
  const kept = m.dataStores.filter((d) => !d.deletedWithStack);
  return {
    id: 'data', title: 'Data stores',
    blocks: [
      { p: `${plural(m.dataStores.length, 'store')} (databases, caches, file systems, buckets, tables, log groups, secrets, keys); ${kept.length ? `${plural(kept.length, 'store')} outlive${kept.length === 1 ? 's' : ''} the stack or need${kept.length === 1 ? 's' : ''} a step before deletion: ${kept.map((d) => d.name).join(', ')}` : 'every one is deleted with the stack'}.` },
      { table: { id: 'stores', head: ['store', 'kind', 'key', 'backup', 'retention', 'deletion', 'construct path'], rows: m.dataStores.map((d) => ({ cells: [{ strong: d.name }, d.kind, code(d.key), d.backup, d.retention, d.deletion, code(d.resource.path)], warn: /not encrypted/.test(d.key) })) } },
    ],
  };
}

// Findings ------------------------------------------------------------------------------------------------------

function findingsSection(m: Model): Section {
  const a = m.assembly;
  const own = m.acknowledgements.filter((x) => !x.automatic);
  const automatic = m.acknowledgements.filter((x) => x.automatic);
  const groups = new Map<string, typeof automatic>();
  for (const x of automatic) groups.set(`${x.rule}\0${x.reason}`, [...(groups.get(`${x.rule}\0${x.reason}`) ?? []), x]);
  const ct = m.validation.findings;
  return {
    id: 'findings', title: 'Acknowledged findings and validation results',
    blocks: [
      { p: `${plural(m.acknowledgements.length, 'acknowledgement')} in the templates' Metadata.cdk_nag: ${own.length} written by this project (one resource and one finding each, with its reason), ${automatic.length} written by CDK itself.` },
      { table: { id: 'acknowledgements', head: ['finding', 'resource', 'reason'], rows: own.map((x) => ({ cells: [code(x.rule), code(x.resource.path), x.reason], data: { ack: x.rule } })) } },
      { p: `CDK's automatic acknowledgements, grouped: CDK writes a CloudFormation-Validate:: acknowledgement on resources it generates for findings of its own template validation that its constructs produce by design; they are not this project's, and they hide no cdk-nag or Control Tower rule.` },
      { table: { id: 'automatic', head: ['finding', 'CDK\'s reason', 'resources', 'resource types'], rows: [...groups.values()].map((xs) => ({ cells: [code(xs[0].rule), xs[0].reason, String(xs.length), [...new Set(xs.map((x) => x.resource.type))].join(', ')] })) } },
      ...[...groups.values()].map((xs) => ({ details: { summary: `${xs[0].rule}: the ${plural(xs.length, 'resource')}`, blocks: [{ list: xs.map((x) => code(x.resource.path)) }] } }) as Block),
      { p: `Validation plugins of the last synth (validation-report.json): ${m.validation.plugins.length ? m.validation.plugins.map((p) => `${p.name} ${p.version ?? ''} ${p.conclusion}`).join(', ') : a.validationReport ? 'no plugin reported a finding or an acknowledgement (a plugin with neither is left out of the report)' : 'no validation-report.json in the assembly'}.` },
      { p: 'Control Tower and other validation results:' },
      { table: { id: 'control-tower', head: ['plugin', 'rule', 'resource', 'state', 'reason'], rows: ct.map((f) => ({ cells: [f.plugin, `${f.rule}: ${f.description}`, code(f.resource), f.acknowledged ? 'acknowledged' : 'VIOLATION', f.reason ?? ''], warn: !f.acknowledged })) } },
      ...(ct.length ? [] : [{ p: 'No Control Tower finding, acknowledged or not, in this assembly.' } as Block]),
    ],
  };
}

// Release -------------------------------------------------------------------------------------------------------

function releaseSection(info: ReleaseInfo): Section {
  const r = info.release;
  const inRelease = new Set(r.images);
  const missing = info.assemblyImages.filter((i) => !inRelease.has(i));
  return {
    id: 'release', title: 'Release',
    blocks: [
      { table: { head: ['field', 'value'], rows: rows([
        { cells: ['bundle', code(info.bundle)] },
        { cells: ['version', { strong: r.version }] },
        { cells: ['customer', r.customerId] },
        { cells: ['created / expires', `${r.createdAt} / ${r.expiresAt}`] },
        { cells: ['signer', [r.signer.algorithm, ' ', code(r.signer.publicKeyFingerprint)]] },
        { cells: ['signature', info.verifiedWith ? `verified with the public key ${info.verifiedWith} (signature, every file, expiry)` : [{ warn: 'not verified here' }, ' (pass --public-key, or run byoc verify)']] },
        { cells: ['contract', [`v${r.contractVersion} `, code(r.contractHash), r.contractHash === contractHash() ? ' (the contract of this kit)' : ' (differs from the contract of this kit)']] },
        { cells: ['hub endpoint', code(r.hubEndpoint)] },
      ]) } },
      { table: { id: 'release-images', head: ['image digest in the release', 'run by the templates'], rows: r.images.map((i) => ({ cells: [code(i), info.assemblyImages.includes(i) ? 'yes' : 'NO'], warn: !info.assemblyImages.includes(i) })) } },
      ...(missing.length ? [{ p: [{ warn: `The templates run ${plural(missing.length, 'image')} the release does not list: ` }, ...join(missing.map(code))] } as Block] : []),
    ],
  };
}
