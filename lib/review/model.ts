import { Assembly, list, Resource, statementsOf, Template } from './assembly';

/**
 * The facts of an assembly a security review needs, read from its templates: IAM, network, workloads, data
 * stores and acknowledged findings. Everything is derived from CloudFormation; nothing is known in advance.
 */

// IAM -------------------------------------------------------------------------------------------------------

export interface Statement {
  readonly sid?: string;
  readonly effect: string;
  readonly principals: string[];
  readonly actions: string[];
  /** `NotAction`: the statement applies to every action but these. */
  readonly notActions: string[];
  readonly resources: string[];
  readonly notResources: string[];
  /** Conditions, one readable line each: `StringEquals aws:SourceAccount = ${AWS::AccountId}`. */
  readonly conditions: string[];
  /** Construct path of the policy (or role, key, endpoint) the statement is written in. */
  readonly source: string;
  /** Logical IDs the statement's resources and conditions refer to (followed through nested parameters). */
  readonly refers: Resource[];
}

/** An action or resource with a wildcard: `*`, `service:*`, `s3:Get*`, `arn:...:key/*`. */
export const isWildcard = (s: string): boolean => s.includes('*');
export const statementHasWildcard = (s: Statement): boolean =>
  s.actions.some(isWildcard) || s.resources.some(isWildcard) || s.notActions.length > 0 || s.notResources.length > 0;

export interface Role {
  readonly resource: Resource;
  readonly description?: string;
  /** Who may assume it: one line per trust statement. */
  readonly trust: Statement[];
  /** Permission statements from every policy attached to it in the templates. */
  readonly statements: Statement[];
  /** Managed policies attached by ARN (AWS-managed): their statements are not in the templates. */
  readonly managedPolicyArns: string[];
  /** Workloads that run with the role (task role, execution role, function role). */
  usedBy: string[];
}

export interface ResourcePolicy {
  readonly resource: Resource;
  readonly kind: string;
  readonly statements: Statement[];
}

// Network ---------------------------------------------------------------------------------------------------

export interface SecurityGroupRule {
  /** Stable key: `<template file>#<logical ID>` of a rule resource, `#<group>/<ingress|egress>[i]` for an inline rule. */
  readonly key: string;
  readonly direction: 'ingress' | 'egress';
  readonly group: Resource | undefined;
  readonly groupLabel: string;
  readonly peer: string;
  readonly peerKind: 'security-group' | 'cidr' | 'prefix-list' | 'unknown';
  readonly peerGroup?: Resource;
  readonly protocol: string;
  readonly ports: string;
  readonly description: string;
  /** Construct path of the resource the rule is written in. */
  readonly source: string;
  /** CDK's rule that matches no traffic (`255.255.255.255/32`, ICMP 252/86): the group has no egress. */
  readonly matchesNothing: boolean;
  /** The peer is the whole IPv4 or IPv6 internet. */
  readonly anywhere: boolean;
}

export interface Route {
  readonly routeTable: string;
  readonly destination: string;
  readonly target: string;
  readonly targetKind: 'internet-gateway' | 'nat-gateway' | 'vpc-endpoint' | 'transit-gateway' | 'peering' | 'other';
  readonly source: string;
}

export interface Endpoint {
  readonly resource: Resource;
  readonly service: string;
  readonly type: string;
  readonly privateDns: boolean;
  readonly securityGroups: string[];
  readonly statements: Statement[];
  /** The service is another account's endpoint service (`com.amazonaws.vpce.<region>.vpce-svc-...`). */
  readonly thirdParty: boolean;
}

// Workloads -------------------------------------------------------------------------------------------------

export interface Workload {
  readonly name: string;
  readonly kind: 'agent' | 'service' | 'function';
  readonly resource: Resource;
  readonly trigger?: string;
  readonly taskRole?: Role;
  readonly executionRole?: Role;
  readonly securityGroups: Resource[];
  readonly images: string[];
  readonly subjects?: { subscribe: string[]; publish: string[] };
  readonly publicIp: boolean;
  readonly environment: Record<string, string>;
}

// Data ------------------------------------------------------------------------------------------------------

export interface DataStore {
  readonly resource: Resource;
  readonly kind: string;
  readonly name: string;
  readonly key: string;
  readonly backup: string;
  readonly retention: string;
  readonly deletion: string;
  /** Deleted with the stack (no Retain or Snapshot policy, no deletion protection). */
  readonly deletedWithStack: boolean;
}

// Findings --------------------------------------------------------------------------------------------------

export interface Acknowledgement {
  readonly rule: string;
  readonly resource: Resource;
  readonly reason: string;
  /** CDK's own acknowledgement (`CloudFormation-Validate::...`), written on every resource it synthesizes. */
  readonly automatic: boolean;
}

export interface ValidationFinding {
  readonly plugin: string;
  readonly rule: string;
  readonly description: string;
  readonly resource: string;
  readonly template: string;
  readonly reason?: string;
  readonly acknowledged: boolean;
}

export interface Model {
  readonly assembly: Assembly;
  readonly roles: Role[];
  readonly resourcePolicies: ResourcePolicy[];
  readonly securityGroups: Resource[];
  readonly rules: SecurityGroupRule[];
  readonly routes: Route[];
  readonly endpoints: Endpoint[];
  readonly workloads: Workload[];
  readonly dataStores: DataStore[];
  readonly acknowledgements: Acknowledgement[];
  readonly validation: { plugins: { name: string; version?: string; conclusion: string }[]; findings: ValidationFinding[] };
  /** Members of each security group: workloads, databases, endpoints, functions (by the group's key). */
  readonly members: Map<Resource, string[]>;
}

const CONDITION_LIMITS_TO_ACCOUNT = /^(aws:PrincipalAccount|aws:SourceAccount|aws:PrincipalOrgID|aws:SourceOrgID|aws:PrincipalArn|aws:SourceArn|aws:SourceVpce?|aws:CalledVia|kms:CallerAccount|kms:ViaService|elasticfilesystem:AccessedViaMountTarget|aws:PrincipalIsAWSService)$/;

function statements(a: Assembly, document: any, template: Template, source: string): Statement[] {
  return statementsOf(document).map((s) => {
    const refers: Resource[] = [];
    const collect = (v: any): void => {
      if (v === null || typeof v !== 'object') return;
      const t = a.target(v, template);
      if (t) { refers.push(t.resource); return; }
      for (const x of Array.isArray(v) ? v : Object.values(v)) collect(x);
    };
    collect(s.Resource);
    collect(s.Condition);
    return {
      sid: s.Sid,
      effect: s.Effect ?? 'Allow',
      principals: principals(a, s.Principal, template),
      actions: list(s.Action).map(String),
      notActions: list(s.NotAction).map(String),
      resources: list(s.Resource).map((r) => a.show(r, template)),
      notResources: list(s.NotResource).map((r) => a.show(r, template)),
      conditions: Object.entries<any>(s.Condition ?? {}).flatMap(([op, kv]) =>
        Object.entries<any>(kv).map(([k, v]) => `${op} ${k} = ${list(v).map((x) => a.show(x, template)).join(' | ')}`)),
      source,
      refers,
    };
  });
}

function principals(a: Assembly, p: any, template: Template): string[] {
  if (p === undefined) return [];
  if (p === '*') return ['anyone (*)'];
  return Object.entries<any>(p).flatMap(([kind, v]) => list(v).map((x) => {
    const shown = a.show(x, template);
    if (kind === 'AWS' && shown === '*') return 'any AWS principal (*)';
    const account = /^arn:[^:]*:iam::(<AccountId>|\d{12}):/.exec(shown.replace(/\$\{AWS::(\w+)\}/g, '<$1>'))?.[1];
    const own = account === '<AccountId>' || (account !== undefined && a.accounts.has(account)) || (kind === 'AWS' && (shown === '${AWS::AccountId}' || a.accounts.has(shown)));
    if (kind === 'AWS' && own && /:root$|^\$\{AWS::AccountId\}$|^\d{12}$/.test(shown)) return 'this account (its IAM policies)';
    return `${kind === 'AWS' ? 'AWS' : kind === 'Service' ? 'service' : kind} ${shown}${kind === 'AWS' && own ? ' (this account)' : ''}`;
  }));
}

/**
 * Whether an Allow statement of a resource policy can admit a principal outside this account: its principal is
 * `*` or another account, and no condition limits it to this account, its services or its network.
 */
export function admitsOutside(s: Statement): boolean {
  if (s.effect !== 'Allow') return false;
  const open = s.principals.some((p) => p.includes('(*)') || (p.startsWith('AWS ') && !p.endsWith('(this account)')));
  if (!open) return false;
  return !s.conditions.some((c) => CONDITION_LIMITS_TO_ACCOUNT.test(c.split(' ')[1]));
}

function iam(a: Assembly): { roles: Role[]; resourcePolicies: ResourcePolicy[] } {
  const roles = new Map<Resource, Role>();
  for (const r of a.ofType('AWS::IAM::Role')) {
    const inline = list(r.props.Policies).flatMap((p: any) => statements(a, p.PolicyDocument, r.template, `${r.path} (inline ${p.PolicyName})`));
    roles.set(r, {
      resource: r,
      description: typeof r.props.Description === 'string' ? r.props.Description : undefined,
      trust: statements(a, r.props.AssumeRolePolicyDocument, r.template, r.path),
      statements: inline,
      managedPolicyArns: list(r.props.ManagedPolicyArns).map((x) => a.show(x, r.template)),
      usedBy: [],
    });
  }
  for (const p of a.ofType('AWS::IAM::ManagedPolicy', 'AWS::IAM::Policy')) {
    const st = statements(a, p.props.PolicyDocument, p.template, p.path);
    for (const ref of list(p.props.Roles)) {
      const role = a.target(ref, p.template)?.resource;
      const entry = role && roles.get(role);
      if (entry) entry.statements.push(...st);
    }
  }
  const resourcePolicies: ResourcePolicy[] = [];
  const add = (r: Resource, kind: string, doc: any) => { if (doc) resourcePolicies.push({ resource: r, kind, statements: statements(a, doc, r.template, r.path) }); };
  for (const r of a.resources) {
    switch (r.type) {
      case 'AWS::KMS::Key': add(r, 'key policy', r.props.KeyPolicy); break;
      case 'AWS::EFS::FileSystem': add(r, 'file system policy', r.props.FileSystemPolicy); break;
      case 'AWS::S3::BucketPolicy': add(r, 'bucket policy', r.props.PolicyDocument); break;
      case 'AWS::ECR::Repository': add(r, 'repository policy', r.props.RepositoryPolicyText); break;
      case 'AWS::SecretsManager::ResourcePolicy': add(r, 'secret policy', r.props.ResourcePolicy); break;
      case 'AWS::SQS::QueuePolicy': add(r, 'queue policy', r.props.PolicyDocument); break;
      case 'AWS::SNS::TopicPolicy': add(r, 'topic policy', r.props.PolicyDocument); break;
      case 'AWS::Lambda::Permission': resourcePolicies.push({ resource: r, kind: 'function permission', statements: [{
        effect: 'Allow', principals: [a.show(r.props.Principal, r.template)], actions: [String(r.props.Action)], notActions: [], resources: [a.show(r.props.FunctionName, r.template)],
        notResources: [], conditions: r.props.SourceAccount ? [`StringEquals aws:SourceAccount = ${a.show(r.props.SourceAccount, r.template)}`] : [], source: r.path, refers: [],
      }] }); break;
      default:
    }
  }
  return { roles: [...roles.values()], resourcePolicies };
}

// Network -----------------------------------------------------------------------------------------------------

function protocolOf(p: any): string {
  const s = String(p);
  return s === '-1' ? 'all' : s === '6' ? 'tcp' : s === '17' ? 'udp' : s;
}

function portsOf(from: any, to: any, protocol: string): string {
  if (protocol === 'all') return 'all';
  if (protocol === 'icmp') return `type ${from} code ${to}`;
  if (from === undefined && to === undefined) return 'all';
  return String(from) === String(to) ? String(from) : `${from}-${to}`;
}

function rules(a: Assembly): SecurityGroupRule[] {
  const out: SecurityGroupRule[] = [];
  const peerOf = (rule: any, template: Template, dir: 'ingress' | 'egress') => {
    const sg = dir === 'ingress' ? rule.SourceSecurityGroupId : rule.DestinationSecurityGroupId;
    const pl = dir === 'ingress' ? rule.SourcePrefixListId : rule.DestinationPrefixListId;
    const cidr = rule.CidrIp ?? rule.CidrIpv6;
    if (sg !== undefined) {
      const t = a.target(sg, template)?.resource;
      return { peer: t ? a.shortPath(t) : a.show(sg, template), peerKind: 'security-group' as const, peerGroup: t };
    }
    if (pl !== undefined) {
      const t = a.target(pl, template)?.resource;
      return { peer: `prefix list ${t ? `{${a.shortPath(t)}}` : a.show(pl, template)}`, peerKind: 'prefix-list' as const };
    }
    if (cidr !== undefined) return { peer: a.show(cidr, template), peerKind: 'cidr' as const };
    return { peer: 'unknown', peerKind: 'unknown' as const };
  };
  const make = (key: string, dir: 'ingress' | 'egress', group: Resource | undefined, groupLabel: string, rule: any, template: Template, source: string): SecurityGroupRule => {
    const protocol = protocolOf(rule.IpProtocol);
    const peer = peerOf(rule, template, dir);
    return {
      key, direction: dir, group, groupLabel, ...peer, protocol,
      ports: portsOf(rule.FromPort, rule.ToPort, protocol),
      description: typeof rule.Description === 'string' ? rule.Description : '',
      source,
      matchesNothing: rule.CidrIp === '255.255.255.255/32' && protocol === 'icmp' && String(rule.FromPort) === '252' && String(rule.ToPort) === '86',
      anywhere: peer.peer === '0.0.0.0/0' || peer.peer === '::/0',
    };
  };
  for (const g of a.ofType('AWS::EC2::SecurityGroup')) {
    list(g.props.SecurityGroupIngress).forEach((r, i) => out.push(make(`${g.template.file}#${g.logicalId}/ingress[${i}]`, 'ingress', g, a.shortPath(g), r, g.template, g.path)));
    list(g.props.SecurityGroupEgress).forEach((r, i) => out.push(make(`${g.template.file}#${g.logicalId}/egress[${i}]`, 'egress', g, a.shortPath(g), r, g.template, g.path)));
  }
  for (const r of a.ofType('AWS::EC2::SecurityGroupIngress', 'AWS::EC2::SecurityGroupEgress')) {
    const group = a.target(r.props.GroupId, r.template)?.resource;
    out.push(make(`${r.template.file}#${r.logicalId}`, r.type.endsWith('Ingress') ? 'ingress' : 'egress', group,
      group ? a.shortPath(group) : a.show(r.props.GroupId, r.template), r.props, r.template, r.path));
  }
  return out;
}

function routes(a: Assembly): Route[] {
  const kindOf = (p: any): Route['targetKind'] => {
    if (p.NatGatewayId) return 'nat-gateway';
    if (p.GatewayId || p.EgressOnlyInternetGatewayId) return 'internet-gateway';
    if (p.VpcEndpointId) return 'vpc-endpoint';
    if (p.TransitGatewayId) return 'transit-gateway';
    if (p.VpcPeeringConnectionId) return 'peering';
    return 'other';
  };
  const out: Route[] = a.ofType('AWS::EC2::Route').map((r) => {
    const p = r.props;
    const targetValue = p.NatGatewayId ?? p.GatewayId ?? p.EgressOnlyInternetGatewayId ?? p.VpcEndpointId ?? p.TransitGatewayId ?? p.VpcPeeringConnectionId
      ?? p.NetworkInterfaceId ?? p.InstanceId ?? p.LocalGatewayId ?? p.CarrierGatewayId ?? p.CoreNetworkArn;
    return {
      routeTable: a.show(p.RouteTableId, r.template),
      destination: a.show(p.DestinationCidrBlock ?? p.DestinationIpv6CidrBlock ?? p.DestinationPrefixListId, r.template),
      target: a.show(targetValue, r.template),
      targetKind: kindOf(p),
      source: r.path,
    };
  });
  for (const e of a.ofType('AWS::EC2::VPCEndpoint').filter((x) => x.props.VpcEndpointType === 'Gateway')) {
    for (const rt of list(e.props.RouteTableIds)) {
      out.push({ routeTable: a.show(rt, e.template), destination: `prefix list of ${a.show(e.props.ServiceName, e.template)}`, target: `{${a.shortPath(e)}}`, targetKind: 'vpc-endpoint', source: e.path });
    }
  }
  return out;
}

function endpoints(a: Assembly): Endpoint[] {
  return a.ofType('AWS::EC2::VPCEndpoint').map((e) => {
    const service = a.show(e.props.ServiceName, e.template);
    return {
      resource: e,
      service,
      type: e.props.VpcEndpointType ?? 'Gateway',
      privateDns: e.props.PrivateDnsEnabled === true,
      securityGroups: list(e.props.SecurityGroupIds).map((g) => { const t = a.target(g, e.template)?.resource; return t ? a.shortPath(t) : a.show(g, e.template); }),
      statements: statements(a, e.props.PolicyDocument, e.template, e.path),
      thirdParty: /^com\.amazonaws\.vpce\./.test(service) || /vpce-svc-/.test(service),
    };
  });
}

// Workloads ---------------------------------------------------------------------------------------------------

function envOf(a: Assembly, container: any, template: Template): Record<string, string> {
  return Object.fromEntries(list(container.Environment).map((e: any) => [e.Name, a.show(e.Value, template)]));
}

function workloads(a: Assembly, roles: Role[]): Workload[] {
  const roleOf = (v: any, t: Template) => { const r = a.target(v, t)?.resource; return r ? roles.find((x) => x.resource === r) : undefined; };
  const groups = (vs: any, t: Template) => list(vs).map((g) => a.target(g, t)?.resource).filter((x): x is Resource => !!x);
  const out: Workload[] = [];
  for (const s of a.ofType('AWS::ECS::Service')) {
    const td = a.target(s.props.TaskDefinition, s.template)?.resource;
    const containers = list(td?.props.ContainerDefinitions);
    const env = Object.assign({}, ...containers.map((c) => envOf(a, c, td!.template)));
    const agent = env.BYOC_AGENT;
    let subjects: Workload['subjects'];
    try { subjects = env.BYOC_SUBJECTS ? JSON.parse(env.BYOC_SUBJECTS) : undefined; } catch { subjects = undefined; }
    const vpc = s.props.NetworkConfiguration?.AwsvpcConfiguration ?? {};
    out.push({
      name: agent ?? a.shortPath(s).replace(/\/Service(\/Service)?$/, ''),
      kind: agent ? 'agent' : 'service',
      resource: s,
      trigger: env.BYOC_TRIGGER,
      taskRole: td ? roleOf(td.props.TaskRoleArn, td.template) : undefined,
      executionRole: td ? roleOf(td.props.ExecutionRoleArn, td.template) : undefined,
      securityGroups: groups(vpc.SecurityGroups, s.template),
      images: containers.map((c) => a.show(c.Image, td!.template)),
      subjects,
      publicIp: vpc.AssignPublicIp === 'ENABLED',
      environment: env,
    });
  }
  for (const f of a.ofType('AWS::Lambda::Function')) {
    out.push({
      name: a.shortPath(f), kind: 'function', resource: f,
      taskRole: roleOf(f.props.Role, f.template),
      securityGroups: groups(f.props.VpcConfig?.SecurityGroupIds, f.template),
      images: f.props.Code?.ImageUri ? [a.show(f.props.Code.ImageUri, f.template)] : [],
      publicIp: false,
      environment: Object.fromEntries(Object.entries<any>(f.props.Environment?.Variables ?? {}).map(([k, v]) => [k, a.show(v, f.template)])),
    });
  }
  for (const w of out) {
    w.taskRole?.usedBy.push(w.kind === 'function' ? `${w.name} (function role)` : `${w.name} (task role)`);
    w.executionRole?.usedBy.push(`${w.name} (execution role)`);
  }
  return out.sort((x, y) => Number(x.kind !== 'agent') - Number(y.kind !== 'agent'));
}

/** Who is in each security group: workloads, databases, caches, file system mount targets, endpoints. */
function memberships(a: Assembly, ws: Workload[]): Map<Resource, string[]> {
  const m = new Map<Resource, string[]>();
  const add = (g: Resource | undefined, who: string) => { if (!g) return; m.set(g, [...(m.get(g) ?? []), who]); };
  for (const w of ws) for (const g of w.securityGroups) add(g, w.kind === 'agent' ? `agent ${w.name}` : w.name);
  for (const r of a.resources) {
    const gs = r.type === 'AWS::RDS::DBInstance' || r.type === 'AWS::RDS::DBCluster' ? r.props.VPCSecurityGroups
      : r.type === 'AWS::ElastiCache::ReplicationGroup' ? r.props.SecurityGroupIds
        : r.type === 'AWS::EFS::MountTarget' || r.type === 'AWS::EC2::VPCEndpoint' ? r.props.SecurityGroups ?? r.props.SecurityGroupIds
          : r.type === 'AWS::ElasticLoadBalancingV2::LoadBalancer' ? r.props.SecurityGroups : undefined;
    const seen = new Set<Resource>();
    for (const g of list(gs)) {
      const t = a.target(g, r.template)?.resource;
      if (t && !seen.has(t)) { seen.add(t); add(t, `${r.type.split('::')[1]} ${a.label(r)}`); }
    }
  }
  return m;
}

// Data --------------------------------------------------------------------------------------------------------

function dataStores(a: Assembly): DataStore[] {
  const out: DataStore[] = [];
  const policy = (r: Resource) => `DeletionPolicy ${r.raw.DeletionPolicy ?? 'Delete (not set)'}${r.raw.UpdateReplacePolicy ? `, UpdateReplacePolicy ${r.raw.UpdateReplacePolicy}` : ''}`;
  const key = (r: Resource, v: any, fallback: string) => (v === undefined ? fallback : a.show(v, r.template));
  for (const r of a.resources) {
    const p = r.props;
    let entry: Omit<DataStore, 'resource' | 'name' | 'deletedWithStack' | 'deletion'> & { deletion?: string } | undefined;
    switch (r.type) {
      case 'AWS::RDS::DBInstance':
      case 'AWS::RDS::DBCluster':
        entry = {
          kind: r.type === 'AWS::RDS::DBInstance' ? `RDS ${p.Engine ?? 'instance'} ${p.EngineVersion ?? ''}`.trim() : `RDS cluster ${p.Engine ?? ''}`.trim(),
          key: p.StorageEncrypted === false ? 'not encrypted' : key(r, p.KmsKeyId, p.StorageEncrypted ? 'AWS-managed key' : 'not encrypted (StorageEncrypted not set)'),
          backup: `automated backups ${p.BackupRetentionPeriod ?? 1} days${p.MultiAZ ? ', Multi-AZ standby' : ''}`,
          retention: `${p.BackupRetentionPeriod ?? 1} days of backups`,
          deletion: `${policy(r)}; deletion protection ${p.DeletionProtection ? 'on' : 'off'}`,
        };
        break;
      case 'AWS::ElastiCache::ReplicationGroup':
        entry = {
          kind: `ElastiCache ${p.Engine ?? 'redis'} ${p.EngineVersion ?? ''}`.trim(),
          key: p.AtRestEncryptionEnabled ? key(r, p.KmsKeyId, 'AWS-managed key') : 'not encrypted at rest',
          backup: p.SnapshotRetentionLimit ? `daily snapshots (${p.SnapshotWindow ?? 'any window'})` : 'no snapshots',
          retention: `${p.SnapshotRetentionLimit ?? 0} days of snapshots`,
        };
        break;
      case 'AWS::EFS::FileSystem':
        entry = {
          kind: 'EFS file system',
          key: p.Encrypted ? key(r, p.KmsKeyId, 'AWS-managed key') : 'not encrypted',
          backup: p.BackupPolicy?.Status === 'ENABLED' ? 'AWS Backup automatic backups' : 'no automatic backups',
          retention: p.LifecyclePolicies ? JSON.stringify(p.LifecyclePolicies) : 'kept until deleted',
        };
        break;
      case 'AWS::S3::Bucket':
        entry = {
          kind: 'S3 bucket',
          key: key(r, p.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.KMSMasterKeyID,
            p.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.SSEAlgorithm ?? 'SSE-S3 (default)'),
          backup: `${p.VersioningConfiguration?.Status === 'Enabled' ? 'versioned' : 'not versioned'}${p.ObjectLockEnabled ? ', Object Lock' : ''}`,
          retention: p.ObjectLockConfiguration?.Rule?.DefaultRetention ? `Object Lock ${JSON.stringify(p.ObjectLockConfiguration.Rule.DefaultRetention)}` : p.LifecycleConfiguration ? 'lifecycle rules' : 'kept until deleted',
        };
        break;
      case 'AWS::DynamoDB::Table':
      case 'AWS::DynamoDB::GlobalTable':
        entry = {
          kind: 'DynamoDB table',
          key: p.SSESpecification?.SSEEnabled ? key(r, p.SSESpecification.KMSMasterKeyId, 'AWS-managed KMS key') : 'AWS-owned key',
          backup: p.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled ? 'point-in-time recovery' : 'no point-in-time recovery',
          retention: p.TimeToLiveSpecification?.Enabled ? `items expire (${p.TimeToLiveSpecification.AttributeName})` : 'kept until deleted',
          deletion: `${policy(r)}; deletion protection ${p.DeletionProtectionEnabled ? 'on' : 'off'}`,
        };
        break;
      case 'AWS::Logs::LogGroup':
        entry = { kind: 'log group', key: key(r, p.KmsKeyId, 'CloudWatch Logs default encryption'), backup: '-', retention: p.RetentionInDays ? `${p.RetentionInDays} days` : 'never expires' };
        break;
      case 'AWS::SecretsManager::Secret':
        entry = { kind: 'secret', key: key(r, p.KmsKeyId, 'aws/secretsmanager (AWS-managed)'), backup: '-', retention: '-' };
        break;
      case 'AWS::KMS::Key':
        entry = {
          kind: `KMS key ${p.KeySpec ?? 'SYMMETRIC_DEFAULT'} ${p.KeyUsage ?? 'ENCRYPT_DECRYPT'}`,
          key: '-', backup: '-', retention: p.EnableKeyRotation ? 'rotated yearly' : 'not rotated',
          deletion: `${policy(r)}${p.PendingWindowInDays ? `, ${p.PendingWindowInDays}-day pending window` : ''}`,
        };
        break;
      case 'AWS::ECR::Repository':
        entry = { kind: 'ECR repository', key: key(r, p.EncryptionConfiguration?.KmsKey, p.EncryptionConfiguration?.EncryptionType ?? 'AES256'), backup: '-',
          retention: p.LifecyclePolicy ? 'lifecycle policy' : 'kept until deleted', deletion: `${policy(r)}${p.EmptyOnDelete ? ', emptied on delete' : ''}` };
        break;
      case 'AWS::Backup::BackupVault':
        entry = { kind: 'backup vault', key: key(r, p.EncryptionKeyArn, 'AWS Backup default key'), backup: '-', retention: '-' };
        break;
      default:
    }
    if (!entry) continue;
    const deletion = entry.deletion ?? policy(r);
    out.push({
      ...entry, resource: r, name: a.label(r), deletion,
      deletedWithStack: !/Retain|Snapshot|RetainExceptOnCreate/.test(String(r.raw.DeletionPolicy ?? '')) && !/protection on/.test(deletion),
    });
  }
  return out;
}

// Findings ----------------------------------------------------------------------------------------------------

function acknowledgements(a: Assembly): Acknowledgement[] {
  return a.resources.flatMap((r) => list(r.raw.Metadata?.cdk_nag?.rules_to_suppress).map((s: any) => ({
    rule: `${s.id}${s.applies_to ? ` [${list(s.applies_to).map((x: any) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')}]` : ''}`,
    resource: r,
    reason: String(s.reason ?? ''),
    automatic: String(s.id).startsWith('CloudFormation-Validate::'),
  })));
}

function validation(a: Assembly): Model['validation'] {
  const reports = list(a.validationReport?.pluginReports);
  const findings: ValidationFinding[] = [];
  for (const p of reports) {
    const add = (v: any, acknowledged: boolean) => {
      for (const c of list(v.violatingConstructs ?? v.violatingResources)) {
        findings.push({
          plugin: p.pluginName, rule: v.ruleName, description: v.description ?? '', acknowledged, reason: v.reason,
          resource: c.constructPath ?? c.resourceLogicalId ?? c.cloudFormationResource?.logicalId ?? '',
          template: c.cloudFormationResource?.templatePath ?? c.templatePath ?? '',
        });
      }
    };
    for (const v of list(p.violations)) add(v, false);
    for (const v of list(p.suppressedViolations)) add(v, true);
  }
  return { plugins: reports.map((p: any) => ({ name: p.pluginName, version: p.pluginVersion, conclusion: p.conclusion })), findings };
}

/** Reads every fact of the report from an assembly. */
export function readModel(a: Assembly): Model {
  const { roles, resourcePolicies } = iam(a);
  const ws = workloads(a, roles);
  return {
    assembly: a, roles, resourcePolicies,
    securityGroups: a.ofType('AWS::EC2::SecurityGroup'),
    rules: rules(a), routes: routes(a), endpoints: endpoints(a), workloads: ws, dataStores: dataStores(a),
    acknowledgements: acknowledgements(a), validation: validation(a), members: memberships(a, ws),
  };
}
