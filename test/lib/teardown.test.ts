import { CfnResource, Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { allResources, exampleProps, readTemplates, synthCustomerPlane } from '../synth';
import { exampleAppProps, synthControl } from '../control-plane/synth';

/**
 * Clean teardown, proven on the templates: every resource of both planes (root and nested templates) has a known
 * deletion path for each `retainData` (and the control plane's `retainReleases`) value. A resource type missing
 * from DELETION_PATHS fails the test until someone classifies it: no resource without a known deletion path.
 *
 * - `none`: holds no data; CloudFormation deletes it with the stack; never Retain or Snapshot.
 * - `data`: holds data; Retain (or Snapshot) exactly when its flag is on (retainReleases for the control plane's
 *   release assets, retainData for everything else), Delete when off, and when off nothing refuses the delete.
 * - `alwaysRetained`: exists only with the flag on and is always kept (the reason says why).
 */
type Path = { kind: 'none' | 'data' | 'alwaysRetained'; why: string };
const none = (why: string): Path => ({ kind: 'none', why });
const data = (why: string): Path => ({ kind: 'data', why });

const DELETION_PATHS: Record<string, Path> = {
  'AWS::CloudFormation::Stack': none('A nested stack is deleted with its parent; its resources are walked as templates of their own.'),
  'AWS::CloudWatch::Alarm': none('Configuration only.'),
  'AWS::CloudWatch::Dashboard': none('Configuration only.'),
  'AWS::EC2::FlowLog': none('The flow log subscription; its log group is classified as a log group.'),
  'AWS::EC2::RouteTable': none('Network configuration.'),
  'AWS::EC2::Route': none('Network configuration.'),
  'AWS::EC2::Subnet': none('Network configuration.'),
  'AWS::EC2::SubnetRouteTableAssociation': none('Network configuration.'),
  'AWS::EC2::VPC': none('Network configuration.'),
  'AWS::EC2::VPCEndpoint': none('Network configuration.'),
  'AWS::EC2::VPCEndpointService': none('Network configuration.'),
  'AWS::EC2::VPCEndpointServicePermissions': none('Network configuration.'),
  'AWS::EC2::VPCGatewayAttachment': none('Network configuration.'),
  'AWS::EC2::InternetGateway': none('Network configuration.'),
  'AWS::EC2::NatGateway': none('Network configuration.'),
  'AWS::EC2::SecurityGroup': none('Network configuration.'),
  'AWS::EC2::SecurityGroupEgress': none('Network configuration.'),
  'AWS::EC2::SecurityGroupIngress': none('Network configuration.'),
  'AWS::EC2::EIP': data('An address the hub publishes is pinned by customers\' allow-lists and kept with retainData; the NAT gateways\' addresses are not, so an EIP may be Delete with the flag on too.'),
  'AWS::ECS::Cluster': none('Compute.'),
  'AWS::ECS::Service': none('Compute.'),
  'AWS::ECS::TaskDefinition': none('Compute; CloudFormation deregisters the revision.'),
  'AWS::EFS::FileSystem': data('Workspace files and the hub\'s JetStream state.'),
  'AWS::EFS::AccessPoint': data('Follows its file system, so a retained file system keeps its per-agent entry points.'),
  'AWS::EFS::MountTarget': none('Network attachment of the file system.'),
  'AWS::ElastiCache::ReplicationGroup': data('Cache and stream state: a final snapshot with retainData.'),
  'AWS::ElastiCache::SubnetGroup': none('Network configuration.'),
  'AWS::ElastiCache::User': none('Access configuration; its password lives in a secret.'),
  'AWS::ElastiCache::UserGroup': none('Access configuration.'),
  'AWS::RDS::DBInstance': data('The database: a final snapshot with retainData, deletion protection only then.'),
  'AWS::RDS::DBParameterGroup': none('Configuration only.'),
  'AWS::RDS::DBSubnetGroup': none('Network configuration.'),
  'AWS::DynamoDB::Table': data('Ingested records and the registry; deletion protection only with retainData.'),
  'AWS::ECR::Repository': data('Release images; emptied by CloudFormation (EmptyOnDelete) when not retained.'),
  'AWS::S3::Bucket': data('Signed bundles and their access logs.'),
  'AWS::S3::BucketPolicy': none('Access configuration.'),
  'AWS::ElasticLoadBalancingV2::Listener': none('Network configuration.'),
  'AWS::ElasticLoadBalancingV2::LoadBalancer': none('Compute; its deletion protection follows retainData (checked below).'),
  'AWS::ElasticLoadBalancingV2::TargetGroup': none('Network configuration.'),
  'AWS::IAM::ManagedPolicy': none('Access configuration.'),
  'AWS::IAM::Role': none('Access configuration.'),
  // A key deleted with the stack is scheduled for deletion after its pending window (7 to 30 days), during which
  // it can be cancelled: CloudFormation's DESTROY cannot be faster than that, by design of KMS.
  'AWS::KMS::Key': data('Keys of retained data must outlive the stack with it, or the data cannot be read.'),
  'AWS::KMS::Alias': none('A name for a key.'),
  'AWS::Lambda::Function': none('The deploy-time function; its log group is a resource of the template (classified as a log group).'),
  'AWS::Logs::LogGroup': data('Service logs; CloudFormation deletes a log group with its events.'),
  'AWS::Logs::MetricFilter': none('Configuration of a log group.'),
  'AWS::Route53::HostedZone': none('The plane\'s private zone, holding only the records of this template.'),
  'AWS::Route53::RecordSet': none('Configuration only.'),
  'AWS::SNS::Topic': none('Alarm routing; messages are not stored.'),
  'AWS::SNS::TopicPolicy': none('Access configuration.'),
  'AWS::SecretsManager::Secret': data('Credentials of retained stores; DESTROY deletes with the default recovery window.'),
  'AWS::ServiceDiscovery::PrivateDnsNamespace': none('Name registration.'),
  'AWS::ServiceDiscovery::Service': none('Name registration.'),
  'AWS::Backup::BackupPlan': none('Schedule only (present with retainData).'),
  'AWS::Backup::BackupSelection': none('Schedule only (present with retainData).'),
  'AWS::Backup::BackupVault': { kind: 'alwaysRetained', why: 'Present only with retainData: a vault holding recovery points cannot be deleted, so it is always kept.' },
  'Custom::DatabaseRoles': none('Creates database roles inside the database; goes with it.'),
  'Custom::RestrictDefaultSecurityGroup': none('Removes the default security group\'s rules; nothing to keep.'),
  'Custom::S3PrefixList': none('Looks up the S3 prefix list at deploy time; holds nothing.'),
};

/**
 * Data that the flags cannot delete, each with the reason. Checked to be what the templates show, so the list
 * cannot go stale silently.
 */
const NOT_DELETABLE_WHEN_OFF: Record<string, string> = {
  // Both registry buckets have Object Lock on: no one (autoDeleteObjects included) can delete an object under
  // retention, so with retainReleases off the bucket goes once its locked objects expire (README says so).
  'AWS::S3::Bucket': 'Object Lock (bundles and their access logs are under retention)',
};

// Left behind by cdk destroy because they are not resources of any template (README "Teardown" says so):
// - the RDSOSMetrics log group, created by RDS enhanced monitoring on first use and shared by every instance of
//   the account and region, unless createRdsOsMetricsLogGroup makes it the plane's;
// - recovery points of EFS automatic backups, in AWS's own vault, which expire after 35 days.

type Row = ReturnType<typeof allResources>[number];

function logicalIdsUnder(roots: IConstruct[]): Set<string> {
  const ids = new Set<string>();
  for (const root of roots) {
    for (const c of root.node.findAll()) if (CfnResource.isCfnResource(c)) ids.add(Stack.of(c).getLogicalId(c));
  }
  return ids;
}

const retained = (r: Row) => ['Retain', 'Snapshot', 'RetainExceptOnCreate'].includes(r.resource.DeletionPolicy);

/** Problems of one plane's resources for one setting; `governingFlag` says which flag keeps a data resource. */
function deletionProblems(rows: Row[], governingFlag: (r: Row) => boolean): string[] {
  const problems: string[] = [];
  for (const r of rows) {
    const path = DELETION_PATHS[r.type];
    const where = `${r.file} ${r.id} (${r.type})`;
    if (!path) { problems.push(`${where}: unclassified resource type; add it to DELETION_PATHS with its deletion path`); continue; }
    if (r.resource.UpdateReplacePolicy !== undefined && r.resource.UpdateReplacePolicy !== (r.resource.DeletionPolicy ?? 'Delete')) {
      problems.push(`${where}: UpdateReplacePolicy ${r.resource.UpdateReplacePolicy} differs from DeletionPolicy`);
    }
    const flag = governingFlag(r);
    if (path.kind === 'none' && retained(r)) problems.push(`${where}: holds no data but is ${r.resource.DeletionPolicy}`);
    if (path.kind === 'alwaysRetained') {
      if (!flag) problems.push(`${where}: exists with its flag off (${path.why})`);
      if (!retained(r)) problems.push(`${where}: not retained (${path.why})`);
    }
    if (path.kind === 'data') {
      if (r.type === 'AWS::EC2::EIP') { if (!flag && retained(r)) problems.push(`${where}: retained with its flag off`); continue; }
      if (flag && !retained(r)) problems.push(`${where}: data not retained with its flag on`);
      if (!flag && retained(r)) problems.push(`${where}: retained with its flag off`);
      if (!flag) {
        if (r.type === 'AWS::ECR::Repository' && r.props.EmptyOnDelete !== true) problems.push(`${where}: cdk destroy fails on a repository holding images (EmptyOnDelete)`);
        if (r.type === 'AWS::S3::Bucket' && !r.props.ObjectLockEnabled && !rows.some((o) => o.type === 'Custom::S3AutoDeleteObjects' && JSON.stringify(o.props.BucketName).includes(r.id))) {
          problems.push(`${where}: cdk destroy fails on a bucket holding objects (autoDeleteObjects)`);
        }
        if (r.type === 'AWS::DynamoDB::Table' && r.props.DeletionProtectionEnabled) problems.push(`${where}: deletion protection on`);
        // The customer plane's database keeps deletion protection in every mode (CT.RDS.PR.13); its deletion path
        // is `byoc destroy`, which lifts it on the verified instance before cdk destroy (README "Teardown").
        if (r.type === 'AWS::RDS::DBInstance' && r.props.DeletionProtection && !r.file.startsWith('ByocCustomerPlane')) problems.push(`${where}: deletion protection on`);
      }
    }
    if (r.type === 'AWS::ElasticLoadBalancingV2::LoadBalancer') {
      const protectedLb = (r.props.LoadBalancerAttributes ?? []).some((a: any) => a.Key === 'deletion_protection.enabled' && a.Value === 'true');
      if (protectedLb !== flag) problems.push(`${where}: deletion protection ${protectedLb} with retainData ${flag}`);
    }
  }
  return problems;
}

function census(rows: Row[]): Record<string, number> {
  const counts: Record<string, number> = { none: 0, data: 0, alwaysRetained: 0, retained: 0 };
  for (const r of rows) { counts[DELETION_PATHS[r.type]?.kind ?? 'unclassified']++; if (retained(r)) counts.retained++; }
  return counts;
}

describe('clean teardown', () => {
  test.each([false, true])('customer plane, retainData %s: every resource has its deletion path', (retainData) => {
    const plane = synthCustomerPlane(exampleProps({ retainData }));
    const rows = allResources(plane.templates);
    expect(Object.keys(plane.templates).length).toBeGreaterThan(1); // nested agent groups walked too
    expect(deletionProblems(rows, () => retainData)).toEqual([]);
    const counts = census(rows);
    expect(counts.retained).toBe(retainData ? counts.data + counts.alwaysRetained : 0);
    // The data stores are all there, so the classification is not vacuous.
    for (const t of ['AWS::RDS::DBInstance', 'AWS::ElastiCache::ReplicationGroup', 'AWS::EFS::FileSystem', 'AWS::KMS::Key', 'AWS::Logs::LogGroup', 'AWS::SecretsManager::Secret']) {
      expect(rows.some((r) => r.type === t)).toBe(true);
    }
  });

  test.each([[false, false], [false, true], [true, false], [true, true]])('control plane, retainData %s, retainReleases %s: every resource has its deletion path', (retainData, retainReleases) => {
    const { stack, outdir } = synthControl({ ...exampleAppProps(), retainData, retainReleases });
    const p = stack.plane;
    const release = logicalIdsUnder([p.imageKey, ...p.repositories, p.servicesRepository, p.signingKey, p.bundleRegistry]);
    const rows = allResources(readTemplates(outdir));
    expect(release.size).toBeGreaterThan(0);
    expect(deletionProblems(rows, (r) => (release.has(r.id) ? retainReleases : retainData))).toEqual([]);
    // With both off nothing at all is retained; what cannot be deleted is named in NOT_DELETABLE_WHEN_OFF.
    if (!retainData && !retainReleases) expect(rows.filter(retained).map((r) => r.id)).toEqual([]);
    const locked = rows.filter((r) => r.type === 'AWS::S3::Bucket');
    expect(locked.length).toBeGreaterThan(0);
    for (const b of locked) expect(b.props.ObjectLockEnabled).toBe(true);
    expect(Object.keys(NOT_DELETABLE_WHEN_OFF)).toEqual(['AWS::S3::Bucket']);
  });

  test('a resource type nobody classified fails the walk', () => {
    const rows = [{ file: 't', id: 'X', type: 'AWS::New::Thing', props: {}, resource: { Type: 'AWS::New::Thing' } }];
    expect(deletionProblems(rows, () => false)).toEqual(['t X (AWS::New::Thing): unclassified resource type; add it to DELETION_PATHS with its deletion path']);
    const kept = [{ file: 't', id: 'R', type: 'AWS::IAM::Role', props: {}, resource: { Type: 'AWS::IAM::Role', DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' } }];
    expect(deletionProblems(kept, () => true)).toEqual(['t R (AWS::IAM::Role): holds no data but is Retain']);
    const repo = [{ file: 't', id: 'E', type: 'AWS::ECR::Repository', props: {}, resource: { Type: 'AWS::ECR::Repository', DeletionPolicy: 'Delete' } }];
    expect(deletionProblems(repo, () => false)).toEqual(['t E (AWS::ECR::Repository): cdk destroy fails on a repository holding images (EmptyOnDelete)']);
  });
});
