import * as fs from 'fs';
import * as path from 'path';
import canonicalize from 'canonicalize';
import { BoundaryContract } from './boundary-contract';
import { assemblyImages, BUNDLE_FORMAT, customerPlaneOf, Release, RELEASE, verifyBundle } from './bundle';
import { BundleError } from './signer';

/**
 * What changed between two signed bundles, read offline from their files: the templates (root and nested
 * stacks, resources by logical ID and type), the IAM statements of every policy document, the security-group
 * rules, the container images by digest and the boundary contract. What a customer reviews before deploying
 * an update, and what a vendor checks before shipping one.
 */

export type Change = 'added' | 'removed';

/** One side of the comparison: the bundle folder and its release metadata. */
export interface DiffSide {
  readonly dir: string;
  readonly version: string;
  readonly customerId: string;
  readonly contractVersion: number;
  readonly contractHash: string;
  readonly hubEndpoint: string;
  /** Signature and every file checked against a public key (`diffBundles` with `publicKeyFile`). */
  readonly verified: boolean;
}

/** A resource added, removed or changed, by stack path (root stack name, then nested stacks' logical IDs) and logical ID. */
export interface ResourceChange {
  readonly stack: string;
  readonly logicalId: string;
  readonly type: string;
  readonly change: Change | 'changed';
  /** The type in the old bundle when it differs (CloudFormation replaces the resource). */
  readonly oldType?: string;
  /** What differs in a changed resource: `Properties.<name>`, `DependsOn`, `DeletionPolicy`, ... */
  readonly fields?: string[];
}

/** A statement of a policy document (identity, resource or trust policy) added or removed. */
export interface IamStatementChange {
  readonly stack: string;
  /** The resource holding the policy document. */
  readonly logicalId: string;
  readonly type: string;
  /** Where the document is in the resource: `PolicyDocument`, `AssumeRolePolicyDocument`, `Policies[<name>].PolicyDocument`, `KeyPolicy`... */
  readonly document: string;
  /** The roles a policy is attached to (`Roles`), as rendered references. */
  readonly roles?: string[];
  readonly change: Change;
  /** The statement, with Action, Resource and Principal lists sorted. */
  readonly statement: Record<string, unknown>;
  /** `Allow s3:GetObject on arn:...`, one line. */
  readonly summary: string;
}

/** A security-group rule added or removed (a description change alone is not a rule change). */
export interface SecurityGroupRuleChange {
  readonly stack: string;
  /** The group the rule belongs to: `<stack>/<logical ID>`, or the rendered reference. */
  readonly group: string;
  readonly direction: 'ingress' | 'egress';
  readonly change: Change;
  /** `tcp 443`, `tcp 1024-65535`, `all`, `icmp 252-86`. */
  readonly ports: string;
  /** `cidr 10.0.0.0/16`, `security group <ref>`, `prefix list <ref>`. */
  readonly peer: string;
  readonly description?: string;
}

/** An image by repository: its digest changed, or the repository is new or gone. */
export interface ImageChange {
  readonly repository: string;
  readonly change: Change | 'changed';
  readonly old?: string;
  readonly new?: string;
}

export interface BundleDiff {
  readonly old: DiffSide;
  readonly new: DiffSide;
  /** Stacks (root or nested) present in only one bundle. */
  readonly stacks: { readonly added: string[]; readonly removed: string[] };
  readonly resources: ResourceChange[];
  readonly iam: IamStatementChange[];
  readonly securityGroupRules: SecurityGroupRuleChange[];
  readonly images: ImageChange[];
  /**
   * Set when the contract's version or hash differs: with the kinds added, removed and changed between the contracts the
   * two bundles' templates record (`Byoc::BoundaryContract`), each changed kind with what changed in it.
   */
  readonly contract?: {
    readonly old: { version: number; hash: string };
    readonly new: { version: number; hash: string };
    readonly kinds: ContractKindChange[];
  };
}

/** A kind of the boundary contract that differs between two bundles. */
export interface ContractKindChange {
  /** The kind and its direction, `customer-to-vendor` or `vendor-to-customer`. */
  readonly kind: string;
  readonly direction: string;
  readonly change: 'added' | 'removed' | 'changed';
  /** For `changed`: what differs, e.g. `maxBytes 2048 -> 4096`, `rateLimit`, `+ field note`, `~ field agent`. */
  readonly details?: string[];
}

/** What differs between two contracts, kind by kind (fields of each kind's closed schema one by one). */
export function contractKindChanges(a: BoundaryContract, b: BoundaryContract): ContractKindChange[] {
  const byName = (c: BoundaryContract) => new Map(c.kinds.map((k) => [k.name, k]));
  const ka = byName(a);
  const kb = byName(b);
  const out: ContractKindChange[] = [];
  for (const name of union(ka.keys(), kb.keys())) {
    const x = ka.get(name);
    const y = kb.get(name);
    if (!x) { out.push({ kind: name, direction: y!.direction, change: 'added' }); continue; }
    if (!y) { out.push({ kind: name, direction: x.direction, change: 'removed' }); continue; }
    const details: string[] = [];
    for (const key of union(Object.keys(x), Object.keys(y))) {
      if (key === 'schema' || key === 'name') continue;
      const [vx, vy] = [(x as unknown as Record<string, unknown>)[key], (y as unknown as Record<string, unknown>)[key]];
      if (canonical(vx) === canonical(vy)) continue;
      const plain = (v: unknown) => (typeof v === 'object' && v !== null ? canonical(v) : String(v));
      details.push(`${key} ${plain(vx)} -> ${plain(vy)}`);
    }
    const [fx, fy] = [x.schema.fields, y.schema.fields];
    for (const f of union(Object.keys(fx), Object.keys(fy))) {
      if (!fx[f]) details.push(`+ field ${f} ${canonical(fy[f])}`);
      else if (!fy[f]) details.push(`- field ${f}`);
      else if (canonical(fx[f]) !== canonical(fy[f])) details.push(`~ field ${f}: ${canonical(fx[f])} -> ${canonical(fy[f])}`);
    }
    if (canonical([...x.schema.required].sort()) !== canonical([...y.schema.required].sort())) details.push(`required ${canonical(x.schema.required)} -> ${canonical(y.schema.required)}`);
    if (details.length) out.push({ kind: name, direction: y.direction, change: 'changed', details });
  }
  return out;
}

export interface DiffOptions {
  /** Verify both bundles (signature, every file, expiry) against this public key first; no downgrade check. @default - not verified */
  readonly publicKeyFile?: string;
  /** Expiry as of this time when verifying. @default - now */
  readonly at?: Date;
}

type Template = { Resources?: Record<string, Resource> };
type Resource = { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> } & Record<string, unknown>;

/** The resource attributes that change what CloudFormation deploys (Metadata does not). */
const COMPARED = ['Properties', 'DependsOn', 'Condition', 'DeletionPolicy', 'UpdateReplacePolicy', 'UpdatePolicy', 'CreationPolicy'];

const canonical = (v: unknown) => canonicalize(v) ?? 'null';

/** Compares two signed bundles; with `publicKeyFile`, verifies both first. */
export function diffBundles(oldDir: string, newDir: string, options: DiffOptions = {}): BundleDiff {
  const a = readSide(oldDir, options);
  const b = readSide(newDir, options);
  const sa = stackTemplates(oldDir);
  const sb = stackTemplates(newDir);
  const stacks = {
    added: [...sb.keys()].filter((s) => !sa.has(s)),
    removed: [...sa.keys()].filter((s) => !sb.has(s)),
  };
  const resources: ResourceChange[] = [];
  for (const stack of union(sa.keys(), sb.keys())) {
    const ra = sa.get(stack)?.Resources ?? {};
    const rb = sb.get(stack)?.Resources ?? {};
    for (const id of union(Object.keys(ra), Object.keys(rb))) {
      const x = ra[id];
      const y = rb[id];
      if (!x) resources.push({ stack, logicalId: id, type: y.Type, change: 'added' });
      else if (!y) resources.push({ stack, logicalId: id, type: x.Type, change: 'removed' });
      else {
        const fields = changedFields(x, y);
        if (x.Type !== y.Type || fields.length) {
          resources.push({ stack, logicalId: id, type: y.Type, change: 'changed', ...(x.Type !== y.Type ? { oldType: x.Type } : {}), fields });
        }
      }
    }
  }
  const contract = a.contractVersion !== b.contractVersion || a.contractHash !== b.contractHash
    ? {
      old: { version: a.contractVersion, hash: a.contractHash },
      new: { version: b.contractVersion, hash: b.contractHash },
      kinds: contractKindChanges(customerPlaneOf(oldDir).contract.contract, customerPlaneOf(newDir).contract.contract),
    }
    : undefined;
  return {
    old: a,
    new: b,
    stacks,
    resources,
    iam: multisetDiff(policyStatements(sa), policyStatements(sb)),
    securityGroupRules: multisetDiff(securityGroupRules(sa), securityGroupRules(sb)),
    images: imageChanges(assemblyImages(oldDir), assemblyImages(newDir)),
    ...(contract ? { contract } : {}),
  };
}

function readSide(dir: string, options: DiffOptions): DiffSide {
  let release: Release;
  if (options.publicKeyFile) {
    release = verifyBundle(dir, options.publicKeyFile, { at: options.at, downgradeCheck: false }).release;
  } else {
    const file = path.join(dir, RELEASE);
    try {
      release = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `has no ${RELEASE}` : `has a ${RELEASE} that is not JSON`;
      throw new BundleError('not-a-bundle', `${dir} ${why}: give two bundle folders that byoc sign wrote`);
    }
    if (release.format !== BUNDLE_FORMAT) {
      throw new BundleError('bad-release', `${file}: format "${release.format}" is not ${BUNDLE_FORMAT}${release.format === 'byoc-bundle/1' ? ' (a release without its customer: sign it again)' : ''}`);
    }
    customerPlaneOf(dir);
  }
  return {
    dir,
    version: release.version,
    customerId: release.customerId,
    contractVersion: release.contractVersion,
    contractHash: release.contractHash,
    hubEndpoint: release.hubEndpoint,
    verified: options.publicKeyFile !== undefined,
  };
}

/** Template files by the S3 object key CDK uploads them to (from the assembly's `*.assets.json`). */
function templateAssets(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.assets.json'))) {
    const assets = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { files?: Record<string, { source?: { path?: string }; destinations?: Record<string, { objectKey?: string }> }> };
    for (const a of Object.values(assets.files ?? {})) {
      if (!a.source?.path?.endsWith('.template.json')) continue;
      for (const d of Object.values(a.destinations ?? {})) if (d.objectKey) out.set(d.objectKey, a.source.path);
    }
  }
  return out;
}

/**
 * Every template of an assembly by stack path: root stacks by name, nested ones as `<parent>/<logical ID>`
 * of their `AWS::CloudFormation::Stack` resource, whose TemplateURL names the template's asset.
 */
export function stackTemplates(dir: string): Map<string, Template> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { artifacts?: Record<string, { type?: string; properties?: { templateFile?: string } }> };
  const assets = templateAssets(dir);
  const out = new Map<string, Template>();
  const add = (stack: string, file: string) => {
    if (file.includes('/') || file.includes('\\') || file === '..' || !file.endsWith('.json')) {
      throw new BundleError('path-traversal', `${dir}: stack ${stack} names template "${file}", which is not a template file of the bundle`);
    }
    const template = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Template;
    out.set(stack, template);
    for (const [id, r] of Object.entries(template.Resources ?? {})) {
      if (r.Type !== 'AWS::CloudFormation::Stack') continue;
      const url = renderValue(r.Properties?.TemplateURL ?? '');
      const nested = assets.get(url.slice(url.lastIndexOf('/') + 1)) ?? r.Metadata?.['aws:asset:path'];
      if (typeof nested !== 'string') throw new BundleError('unknown-template', `${dir}: nested stack ${stack}/${id} has a template (${url}) that is not in the bundle`);
      add(`${stack}/${id}`, nested);
    }
  };
  for (const [name, artifact] of Object.entries(manifest.artifacts ?? {})) {
    if (artifact.type === 'aws:cloudformation:stack') add(name, artifact.properties?.templateFile ?? `${name}.template.json`);
  }
  return out;
}

function union<T>(a: Iterable<T>, b: Iterable<T>): T[] {
  return [...new Set([...a, ...b])].sort();
}

function changedFields(x: Resource, y: Resource): string[] {
  const fields: string[] = [];
  for (const attr of COMPARED) {
    if (attr === 'Properties') {
      const px = x.Properties ?? {};
      const py = y.Properties ?? {};
      for (const k of union(Object.keys(px), Object.keys(py))) if (canonical(px[k]) !== canonical(py[k])) fields.push(`Properties.${k}`);
    } else if (canonical(x[attr]) !== canonical(y[attr])) {
      fields.push(attr);
    }
  }
  return fields;
}

/** A template value as text: strings as they are, `Ref` as `${X}`, `Fn::GetAtt` as `${X.Attr}`, `Fn::Join` joined. */
export function renderValue(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(renderValue).join(', ');
  const o = v as Record<string, unknown> | null;
  if (o && typeof o === 'object') {
    if (typeof o.Ref === 'string') return `\${${o.Ref}}`;
    const att = o['Fn::GetAtt'];
    if (Array.isArray(att)) return `\${${att.join('.')}}`;
    if (typeof att === 'string') return `\${${att}}`;
    const join = o['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) return (join[1] as unknown[]).map(renderValue).join(String(join[0]));
    const sub = o['Fn::Sub'];
    if (typeof sub === 'string') return sub;
    if (Array.isArray(sub) && typeof sub[0] === 'string') return sub[0];
  }
  return canonical(v);
}

const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const sortedRendered = (v: unknown) => [...new Set(list(v).map(renderValue))].sort();

/** A statement with its lists in one order, so the same statement in both bundles compares equal. */
function normalizeStatement(s: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...s };
  for (const k of ['Action', 'NotAction', 'Resource', 'NotResource']) if (k in out) out[k] = [...list(out[k])].sort((p, q) => canonical(p).localeCompare(canonical(q)));
  for (const k of ['Principal', 'NotPrincipal']) {
    const p = out[k];
    if (p && typeof p === 'object' && !Array.isArray(p)) {
      out[k] = Object.fromEntries(Object.entries(p as Record<string, unknown>).map(([t, v]) => [t, [...list(v)].sort((x, y) => canonical(x).localeCompare(canonical(y)))]));
    }
  }
  return out;
}

function statementSummary(s: Record<string, unknown>): string {
  const actions = 'NotAction' in s ? `every action but ${sortedRendered(s.NotAction).join(' ')}` : sortedRendered(s.Action).join(' ');
  const resources = 'NotResource' in s ? `every resource but ${sortedRendered(s.NotResource).join(' ')}` : sortedRendered(s.Resource).join(' ');
  const principalOf = (p: unknown) => (p === '*' ? '*' : Object.entries((p ?? {}) as Record<string, unknown>).map(([t, v]) => `${t} ${sortedRendered(v).join(' ')}`).join('; '));
  return [
    `${s.Effect ?? '?'} ${actions || '(no action)'}`,
    resources ? ` on ${resources}` : '',
    'Principal' in s ? ` for ${principalOf(s.Principal)}` : '',
    'NotPrincipal' in s ? ` for every principal but ${principalOf(s.NotPrincipal)}` : '',
    'Condition' in s ? ` if ${canonical(s.Condition)}` : '',
  ].join('');
}

/** Every policy document (an object whose `Statement` holds statements) anywhere in a resource's properties, with its place. */
function policyDocuments(props: unknown, at: string, out: { document: string; statements: unknown[] }[]): void {
  if (Array.isArray(props)) {
    props.forEach((v, i) => {
      const name = v && typeof v === 'object' && typeof (v as Record<string, unknown>).PolicyName === 'string' ? (v as Record<string, unknown>).PolicyName : i;
      policyDocuments(v, `${at}[${name}]`, out);
    });
    return;
  }
  if (!props || typeof props !== 'object') return;
  const o = props as Record<string, unknown>;
  // A policy's statements each have an Effect (a WAF rule's `Statement` is something else).
  const statements = list(o.Statement);
  if (statements.length && statements.every((x) => x !== null && typeof x === 'object' && 'Effect' in x)) {
    out.push({ document: at, statements });
    return;
  }
  for (const [k, v] of Object.entries(o)) {
    if (k.startsWith('Fn::') || k === 'Ref') continue;
    policyDocuments(v, at ? `${at}.${k}` : k, out);
  }
}

type Keyed<T> = { key: string; item: Omit<T, 'change'> };

function policyStatements(stacks: Map<string, Template>): Keyed<IamStatementChange>[] {
  const out: Keyed<IamStatementChange>[] = [];
  for (const [stack, t] of stacks) {
    for (const [logicalId, r] of Object.entries(t.Resources ?? {})) {
      const docs: { document: string; statements: unknown[] }[] = [];
      policyDocuments(r.Properties ?? {}, '', docs);
      const roles = r.Properties?.Roles !== undefined ? sortedRendered(r.Properties.Roles) : undefined;
      for (const { document, statements } of docs) {
        for (const s of statements) {
          const statement = normalizeStatement((s ?? {}) as Record<string, unknown>);
          const owner = `${stack}/${logicalId} ${document}`;
          out.push({
            key: `${owner} ${canonical(statement)}`,
            item: { stack, logicalId, type: r.Type, document, ...(roles ? { roles } : {}), statement, summary: statementSummary(statement) },
          });
        }
      }
    }
  }
  return out;
}

/** The logical ID a reference names in the same template (`Ref`, `Fn::GetAtt`), else the rendered value. */
function groupOf(stack: string, v: unknown, t: Template): string {
  const o = v as Record<string, unknown> | null;
  const id = typeof o?.Ref === 'string' ? o.Ref : Array.isArray(o?.['Fn::GetAtt']) ? String((o!['Fn::GetAtt'] as unknown[])[0]) : undefined;
  return id && t.Resources?.[id] ? `${stack}/${id}` : renderValue(v);
}

function ruleOf(stack: string, group: string, direction: 'ingress' | 'egress', rule: Record<string, unknown>, t: Template): Keyed<SecurityGroupRuleChange> {
  const protocol = renderValue(rule.IpProtocol ?? '-1');
  const from = rule.FromPort === undefined ? undefined : renderValue(rule.FromPort);
  const to = rule.ToPort === undefined ? undefined : renderValue(rule.ToPort);
  const ports = protocol === '-1' ? 'all' : from === undefined ? protocol : from === to ? `${protocol} ${from}` : `${protocol} ${from}-${to}`;
  const peers: [string, string][] = [
    ['CidrIp', 'cidr'], ['CidrIpv6', 'cidr'], ['SourceSecurityGroupId', 'security group'], ['DestinationSecurityGroupId', 'security group'],
    ['SourcePrefixListId', 'prefix list'], ['DestinationPrefixListId', 'prefix list'], ['SourceSecurityGroupName', 'security group'],
  ];
  const found = peers.filter(([k]) => rule[k] !== undefined).map(([k, what]) => `${what} ${what === 'security group' ? groupOf(stack, rule[k], t) : renderValue(rule[k])}`);
  const peer = found.join(', ') || 'anywhere';
  const description = typeof rule.Description === 'string' ? rule.Description : undefined;
  return {
    key: canonical([stack, group, direction, ports, peer]),
    item: { stack, group, direction, ports, peer, ...(description !== undefined ? { description } : {}) },
  };
}

function securityGroupRules(stacks: Map<string, Template>): Keyed<SecurityGroupRuleChange>[] {
  const out: Keyed<SecurityGroupRuleChange>[] = [];
  for (const [stack, t] of stacks) {
    for (const [id, r] of Object.entries(t.Resources ?? {})) {
      const p = r.Properties ?? {};
      if (r.Type === 'AWS::EC2::SecurityGroup') {
        for (const rule of list(p.SecurityGroupIngress)) out.push(ruleOf(stack, `${stack}/${id}`, 'ingress', rule as Record<string, unknown>, t));
        for (const rule of list(p.SecurityGroupEgress)) out.push(ruleOf(stack, `${stack}/${id}`, 'egress', rule as Record<string, unknown>, t));
      } else if (r.Type === 'AWS::EC2::SecurityGroupIngress' || r.Type === 'AWS::EC2::SecurityGroupEgress') {
        const group = p.GroupId !== undefined ? groupOf(stack, p.GroupId, t) : renderValue(p.GroupName);
        out.push(ruleOf(stack, group, r.Type.endsWith('Ingress') ? 'ingress' : 'egress', p, t));
      }
    }
  }
  return out;
}

/** Items in only one of two lists, compared by key as multisets (a statement listed twice and once differs). */
function multisetDiff<T extends { change: Change }>(a: Keyed<T>[], b: Keyed<T>[]): T[] {
  const count = (xs: Keyed<T>[]) => {
    const m = new Map<string, Keyed<T>[]>();
    for (const x of xs) m.set(x.key, [...(m.get(x.key) ?? []), x]);
    return m;
  };
  const ca = count(a);
  const cb = count(b);
  const out: T[] = [];
  for (const key of union(ca.keys(), cb.keys())) {
    const xa = ca.get(key) ?? [];
    const xb = cb.get(key) ?? [];
    for (const x of xa.slice(xb.length)) out.push({ ...x.item, change: 'removed' } as T);
    for (const x of xb.slice(xa.length)) out.push({ ...x.item, change: 'added' } as T);
  }
  return out;
}

function imageChanges(a: string[], b: string[]): ImageChange[] {
  const byRepo = (images: string[]) => new Map(images.map((i) => [i.slice(0, i.lastIndexOf('@')), i.slice(i.lastIndexOf('@') + 1)]));
  const ma = byRepo(a);
  const mb = byRepo(b);
  const out: ImageChange[] = [];
  for (const repository of union(ma.keys(), mb.keys())) {
    const x = ma.get(repository);
    const y = mb.get(repository);
    if (x === y) continue;
    out.push({ repository, change: !x ? 'added' : !y ? 'removed' : 'changed', ...(x ? { old: x } : {}), ...(y ? { new: y } : {}) });
  }
  return out;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const count = <T extends { change: string }>(xs: readonly T[], c: string) => xs.filter((x) => x.change === c).length;

/** The diff as text for a person: a header, then each section that has changes. */
export function formatDiff(d: BundleDiff): string {
  const lines: string[] = [];
  const side = (s: DiffSide) => `${s.dir} (release ${s.version}, customer ${s.customerId})`;
  lines.push(`old: ${side(d.old)}`, `new: ${side(d.new)}`);
  if (d.old.customerId !== d.new.customerId) lines.push(`customer: ${d.old.customerId} -> ${d.new.customerId} (the bundles are different customers' planes)`);
  if (d.old.hubEndpoint !== d.new.hubEndpoint) lines.push(`hub endpoint: ${d.old.hubEndpoint} -> ${d.new.hubEndpoint}`);
  lines.push(d.contract
    ? `contract: v${d.contract.old.version} ${d.contract.old.hash} -> v${d.contract.new.version} ${d.contract.new.hash}`
    : `contract: unchanged (v${d.new.contractVersion} ${d.new.contractHash})`);
  for (const k of d.contract?.kinds ?? []) {
    if (k.change !== 'changed') lines.push(`  ${k.change === 'added' ? '+' : '-'} kind ${k.kind} (${k.direction})`);
    else {
      lines.push(`  ~ kind ${k.kind} (${k.direction}):`);
      for (const detail of k.details ?? []) lines.push(`      ${detail}`);
    }
  }
  if (d.images.length) {
    lines.push('images:');
    for (const i of d.images) {
      lines.push(i.change === 'changed' ? `  ~ ${i.repository}: ${i.old} -> ${i.new}` : `  ${i.change === 'added' ? '+' : '-'} ${i.repository}@${i.new ?? i.old}`);
    }
  }
  if (d.stacks.added.length || d.stacks.removed.length || d.resources.length) {
    lines.push('templates:');
    for (const s of d.stacks.added) lines.push(`  + stack ${s}`);
    for (const s of d.stacks.removed) lines.push(`  - stack ${s}`);
    let stack: string | undefined;
    for (const r of d.resources) {
      if (r.stack !== stack) lines.push(`  ${(stack = r.stack)}:`);
      if (r.change === 'changed') {
        lines.push(`    ~ ${r.logicalId} (${r.oldType ? `${r.oldType} -> ${r.type}, replaced` : r.type}): ${r.fields!.join(', ') || 'type'}`);
      } else {
        lines.push(`    ${r.change === 'added' ? '+' : '-'} ${r.logicalId} (${r.type})`);
      }
    }
  }
  if (d.iam.length) {
    lines.push('IAM statements:');
    let owner: string | undefined;
    for (const s of d.iam) {
      const o = `${s.stack}/${s.logicalId} (${s.type}${s.roles ? `, roles ${s.roles.join(' ')}` : ''}) ${s.document}`;
      if (o !== owner) lines.push(`  ${(owner = o)}:`);
      lines.push(`    ${s.change === 'added' ? '+' : '-'} ${s.summary}`);
    }
  }
  if (d.securityGroupRules.length) {
    lines.push('security-group rules:');
    for (const r of d.securityGroupRules) {
      const dir = r.direction === 'ingress' ? 'from' : 'to';
      lines.push(`  ${r.change === 'added' ? '+' : '-'} ${r.group} ${r.direction} ${r.ports} ${dir} ${r.peer}${r.description ? ` (${r.description})` : ''}`);
    }
  }
  return lines.join('\n');
}

/** One line: what was compared, how much changed, what was checked. */
export function diffSummary(d: BundleDiff): string {
  const templates = new Set(d.resources.map((r) => r.stack)).size;
  return [
    `compared ${d.old.dir} (${d.old.version}) with ${d.new.dir} (${d.new.version})`,
    `${count(d.resources, 'added')} resources added, ${count(d.resources, 'removed')} removed, ${count(d.resources, 'changed')} changed in ${plural(templates, 'stack')}`,
    `${plural(count(d.iam, 'added'), 'IAM statement')} added, ${count(d.iam, 'removed')} removed`,
    `${plural(count(d.securityGroupRules, 'added'), 'security-group rule')} added, ${count(d.securityGroupRules, 'removed')} removed`,
    `${plural(d.images.length, 'image')} changed`,
    d.contract ? `contract changed (${count(d.contract.kinds, 'added')} kinds added, ${count(d.contract.kinds, 'removed')} removed, ${count(d.contract.kinds, 'changed')} changed)` : 'contract unchanged',
    d.old.verified && d.new.verified ? 'both bundles verified' : 'signatures not checked (pass --public-key to verify both)',
  ].join('; ');
}
