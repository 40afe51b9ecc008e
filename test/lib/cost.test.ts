import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../bin/byoc';
import { costItems, defaultAssumptions, estimateCost, readAssembly } from '../../lib/cost/estimate';
import { allPrices, PRICE_TABLE_DATE, PRICES, pricesFor } from '../../lib/cost/prices';
import { projectRoot } from '../../lib/app';

// Fixture templates, priced by hand below in us-east-1 (lib/cost/prices.ts):
//   Fargate Linux/ARM on-demand 0.03238 vCPU-h, 0.00356 GB-h; Linux/X86 0.04048 vCPU-h, 0.004445 GB-h;
//   Fargate Spot (X86) 0.012144 vCPU-h, 0.0013335 GB-h; CloudWatch Logs 0.50/GB; RDS db.t4g.medium 0.065/h
//   (Multi-AZ 0.13/h), gp3 0.115/GB-month (Multi-AZ 0.23); interface endpoint 0.01/AZ-hour, 0.01/GB;
//   KMS key 1.00/month; secret 0.40/month; NAT 0.045/h and 0.045/GB; public IPv4 0.005/h; NLB 0.0225/h,
//   0.006/LCU-h; ElastiCache cache.t4g.small 0.032/h; EFS 0.30/GB-month, 0.03/GB read, 0.06/GB written;
//   DynamoDB on-demand 0.625/M writes, 0.125/M reads, 0.25/GB-month, PITR 0.20/GB-month. A month is 730 h.

const taskDef = (cpu: string, memory: string, opts: { arm?: boolean; agent?: string; family: string }) => ({
  Type: 'AWS::ECS::TaskDefinition',
  Properties: {
    Cpu: cpu, Memory: memory, Family: opts.family, RequiresCompatibilities: ['FARGATE'],
    ...(opts.arm ? { RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' } } : {}),
    ContainerDefinitions: [{ Name: 'main', Environment: opts.agent ? [{ Name: 'BYOC_AGENT', Value: opts.agent }] : [] }],
  },
});
const service = (td: string, extra: Record<string, unknown> = {}) => ({ Type: 'AWS::ECS::Service', Properties: { TaskDefinition: { Ref: td }, ...extra } });

/** A plane in two templates: an agent and a data store in the root, the leaf in a nested stack. */
const PLANE = {
  'Plane.template.json': {
    Resources: {
      AlphaTask: taskDef('1024', '2048', { arm: true, agent: 'alpha', family: 'byoc-t-alpha' }),
      AlphaService: service('AlphaTask', { DesiredCount: 2, LaunchType: 'FARGATE' }),
      Db: { Type: 'AWS::RDS::DBInstance', Properties: { Engine: 'postgres', DBInstanceClass: 'db.t4g.medium', MultiAZ: true, AllocatedStorage: '20', StorageType: 'gp3' } },
      Ecr: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Interface', ServiceName: 'com.amazonaws.us-east-1.ecr.api', SubnetIds: [{ Ref: 'A' }, { Ref: 'B' }] } },
      S3: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Gateway', ServiceName: 'com.amazonaws.us-east-1.s3' } },
      Key: { Type: 'AWS::KMS::Key', Properties: {} },
      Secret1: { Type: 'AWS::SecretsManager::Secret', Properties: {} },
      Secret2: { Type: 'AWS::SecretsManager::Secret', Properties: {} },
      Role: { Type: 'AWS::IAM::Role', Properties: {} },
      Bucket: { Type: 'AWS::S3::Bucket', Properties: {} },
    },
  },
  'PlaneLink.nested.template.json': {
    Resources: {
      LeafTask: taskDef('512', '1024', { family: 'byoc-t-nats-leaf' }),
      LeafService: service('LeafTask'),
    },
  },
};

/** Vendor-side things: a service half on Spot by its own strategy, NAT, NLB, DynamoDB, EFS, Redis. */
const VENDOR = {
  'Vendor.template.json': {
    Resources: {
      IngestTask: taskDef('256', '512', { family: 'byoc-t-ingest' }),
      IngestService: service('IngestTask', {
        DesiredCount: 5, CapacityProviderStrategy: [{ CapacityProvider: 'FARGATE', Base: 1, Weight: 1 }, { CapacityProvider: 'FARGATE_SPOT', Weight: 3 }],
      }),
      Nat: { Type: 'AWS::EC2::NatGateway', Properties: {} },
      Eip: { Type: 'AWS::EC2::EIP', Properties: {} },
      Nlb: { Type: 'AWS::ElasticLoadBalancingV2::LoadBalancer', Properties: { Type: 'network' } },
      Table: { Type: 'AWS::DynamoDB::Table', Properties: { BillingMode: 'PAY_PER_REQUEST', PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } } },
      Files: { Type: 'AWS::EFS::FileSystem', Properties: {} },
      Redis: { Type: 'AWS::ElastiCache::ReplicationGroup', Properties: { Engine: 'redis', CacheNodeType: 'cache.t4g.small', NumCacheClusters: 2 } },
    },
  },
};

let tmp: string;
const write = (name: string, templates: Record<string, unknown>, manifestRegion?: string): string => {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const [f, t] of Object.entries(templates)) fs.writeFileSync(path.join(dir, f), JSON.stringify(t));
  if (manifestRegion) fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ artifacts: { Plane: { type: 'aws:cloudformation:stack', environment: `aws://111122223333/${manifestRegion}` } } }));
  return dir;
};
let plane: string;
let vendor: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-cost-'));
  plane = write('plane', PLANE);
  vendor = write('vendor', VENDOR, 'us-east-1');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('estimate of fixture templates, by hand', () => {
  test('always-on, on-demand: every resource of the root and nested templates priced', () => {
    const r = estimateCost(readAssembly(plane), { region: 'us-east-1' });
    // alpha: 2 tasks x 730 h x (1 x 0.03238 + 2 x 0.00356 = 0.0395) = 57.67; logs 2 x 0.5 GB x 0.50 = 0.50 -> 58.17
    expect(r.byAgent).toEqual([{ agent: 'alpha', base: expect.closeTo(58.17, 6), chosen: expect.closeTo(58.17, 6) }]);
    const line = (name: string) => r.lines.find((l) => l.name === name)!;
    // leaf (X86, nested template): 730 x (0.5 x 0.04048 + 1 x 0.004445 = 0.024685) = 18.02005; logs 0.25 -> 18.27005
    expect(line('byoc-t-nats-leaf').component).toBe('leaf');
    expect(line('byoc-t-nats-leaf').base).toBeCloseTo(18.27005, 6);
    // RDS Multi-AZ: 730 x 0.13 = 94.9; 20 GB x 0.23 = 4.6 -> 99.5
    expect(line('RDS postgres db.t4g.medium Multi-AZ').base).toBeCloseTo(99.5, 6);
    // endpoint: 2 AZs x 730 x 0.01 = 14.6; 50 GB x 0.01 = 0.5 (the gateway endpoint is free) -> 15.1
    expect(line('interface VPC endpoints').base).toBeCloseTo(15.1, 6);
    // security: 1 key 1.00 + 2 secrets x 0.40 = 1.80
    expect(r.byComponent.find((c) => c.component === 'security')!.base).toBeCloseTo(1.8, 6);
    // total: 58.17 + 18.27005 + 99.5 + 15.1 + 1.8 = 192.84005
    expect(r.baseTotal).toBeCloseTo(192.84005, 6);
    expect(r.chosenTotal).toBeCloseTo(192.84005, 6);
    expect(r.ecsServices).toBe(2);
    expect(r.templates).toBe(2);
    expect(r.notPriced).toEqual([{ type: 'AWS::S3::Bucket', count: 1, reason: expect.stringContaining('storage') }]);
  });

  test('business hours + Spot: agents only, Spot at the X86 rate, leaf and data stores unchanged', () => {
    const r = estimateCost(readAssembly(plane), { region: 'us-east-1', schedule: 'business', spot: true });
    // agents run 10 h x 5 days x 730 / 168 = 217.2619 h a month
    expect(r.agentHoursPerMonth).toBeCloseTo(217.2619, 4);
    // alpha on Spot (X86): 2 x 217.2619 x (1 x 0.012144 + 2 x 0.0013335 = 0.014811) = 6.435735;
    // logs 2 x (217.2619 / 730) x 0.5 x 0.50 = 0.148810 -> 6.584545
    expect(r.byAgent[0].chosen).toBeCloseTo(6.584545, 5);
    expect(r.lines.find((l) => l.name === 'byoc-t-nats-leaf')!.chosen).toBeCloseTo(18.27005, 6);
    // total: 6.584545 + 18.27005 + 99.5 + 15.1 + 1.8 = 141.254595; ratio 141.254595 / 192.84005 = 0.732496
    expect(r.chosenTotal).toBeCloseTo(141.254595, 5);
    expect(r.ratio).toBeCloseTo(0.732496, 5);
    // alpha is ARM64, which Fargate Spot does not run: the estimate says it priced it as X86_64
    expect(r.notes.join('\n')).toMatch(/Fargate Spot runs X86_64 tasks only/);
    expect(estimateCost(readAssembly(plane), { region: 'us-east-1', schedule: 'business' }).notes.join('\n')).not.toMatch(/Fargate Spot/);
    // the four scenarios: business hours on-demand is 2 x 217.2619 x 0.0395 = 17.16369 + 0.148810 for alpha
    const business = r.scenarios.find((s) => s.schedule === 'business' && !s.spot)!;
    expect(business.total).toBeCloseTo(17.16369 + 0.14881 + 18.27005 + 99.5 + 15.1 + 1.8, 4);
  });

  test('vendor resources: a strategy\'s own Spot share, NAT, public IPv4, NLB, DynamoDB, EFS, Redis', () => {
    const asm = readAssembly(vendor);
    expect(asm.region).toBe('us-east-1');
    const r = estimateCost(asm);
    expect(r.regionFrom).toBe('assembly');
    // ingest: 5 tasks, base 1 on FARGATE, the other 4 split 1:3 -> 3 of 5 on Spot (0.6)
    //   on-demand 0.25 x 0.04048 + 0.5 x 0.004445 = 0.0123425; Spot 0.25 x 0.012144 + 0.5 x 0.0013335 = 0.00370275
    //   5 x 730 x (0.4 x 0.0123425 + 0.6 x 0.00370275 = 0.00715865) = 26.1290725; logs 5 x 0.25 = 1.25 -> 27.3790725
    expect(r.lines.find((l) => l.name === 'byoc-t-ingest')!.base).toBeCloseTo(27.3790725, 6);
    // NAT 32.85 + 20 GB x 0.045 = 0.9; EIP 3.65; NLB 16.425 + 4.38 = 20.805; DynamoDB 0.625 + 0.125 + 0.25 + 0.20 = 1.2;
    // EFS 6 + 0.6 + 0.6 = 7.2; Redis 2 x 0.032 x 730 = 46.72 -> total 140.7040725
    expect(r.baseTotal).toBeCloseTo(140.7040725, 6);
    // no agents: business hours and Spot change nothing
    expect(estimateCost(asm, { schedule: 'business', spot: true }).chosenTotal).toBeCloseTo(140.7040725, 6);
    // an assumption changed: 100 GB through NAT costs 80 GB x 0.045 = 3.6 more
    expect(estimateCost(asm, { assumptions: { natGbMonth: 100 } }).baseTotal).toBeCloseTo(140.7040725 + 3.6, 6);
  });

  test('Container Insights, alarms and dashboards: metrics follow the agent\'s hours', () => {
    const dir = write('monitored', {
      'Monitored.template.json': {
        Resources: {
          Cluster: { Type: 'AWS::ECS::Cluster', Properties: { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] } },
          BetaTask: taskDef('256', '512', { arm: true, agent: 'beta', family: 'byoc-t-beta' }),
          BetaService: service('BetaTask'),
          Alarm: { Type: 'AWS::CloudWatch::Alarm', Properties: {} },
          Dashboard: { Type: 'AWS::CloudWatch::Dashboard', Properties: {} },
          Topic: { Type: 'AWS::SNS::Topic', Properties: {} },
        },
      },
    });
    const always = estimateCost(readAssembly(dir), { region: 'us-east-1' });
    // beta: 730 x (0.25 x 0.03238 + 0.5 x 0.00356 = 0.009875) = 7.20875; logs 0.25; 20 metrics x 0.30 = 6.00 -> 13.45875
    expect(always.byAgent).toEqual([{ agent: 'beta', base: expect.closeTo(13.45875, 6), chosen: expect.closeTo(13.45875, 6) }]);
    // observability: cluster 10 metrics x 0.30 = 3.00, alarm 0.10, dashboard 3.00 -> 6.10; total 19.55875
    expect(always.byComponent.find((c) => c.component === 'observability')!.base).toBeCloseTo(6.1, 6);
    expect(always.baseTotal).toBeCloseTo(19.55875, 6);
    expect(always.notPriced).toEqual([{ type: 'AWS::SNS::Topic', count: 1, reason: 'publishes and deliveries' }]);
    // business hours (217.2619 h, share 0.297619): compute 2.145461, logs 0.074405, metrics 1.785714 -> 4.005580; total 10.105580
    const business = estimateCost(readAssembly(dir), { region: 'us-east-1', schedule: 'business' });
    expect(business.byAgent[0].chosen).toBeCloseTo(4.00558, 5);
    expect(business.chosenTotal).toBeCloseTo(10.10558, 5);
  });

  test('an environment-agnostic assembly is priced in us-east-1 and says so', () => {
    const r = estimateCost(readAssembly(plane));
    expect(r.region).toBe('us-east-1');
    expect(r.regionFrom).toBe('default');
    expect(r.notes.join('\n')).toMatch(/environment-agnostic/);
  });

  test('every ECS service is priced by one compute item naming it', () => {
    const { items, ecsServices } = costItems(readAssembly(plane), pricesFor('eu-west-1'), defaultAssumptions());
    expect(ecsServices.sort()).toEqual(['Plane.template.json#AlphaService', 'PlaneLink.nested.template.json#LeafService']);
    for (const s of ecsServices) expect(items.filter((i) => i.kind === 'compute' && i.resources.includes(s))).toHaveLength(1);
  });
});

describe('price table', () => {
  test('every price has a positive amount, a unit, an AWS pricing page and the table\'s date', () => {
    const prices = allPrices();
    expect(prices.length).toBeGreaterThan(100);
    expect(PRICE_TABLE_DATE).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const { path: at, price } of prices) {
      expect({ at, ok: price.usd > 0 && price.unit.length > 0 }).toEqual({ at, ok: true });
      expect({ at, source: price.source }).toEqual({ at, source: expect.stringMatching(/^https:\/\/aws\.amazon\.com\/([a-z0-9-]+\/)*pricing\/([a-z-]+\/)?$/) });
      expect({ at, date: price.date }).toEqual({ at, date: PRICE_TABLE_DATE });
    }
  });

  test('covers us-east-1, eu-west-1, eu-central-1 and the regions of the example configurations', () => {
    const regions = new Set(['us-east-1', 'eu-west-1', 'eu-central-1']);
    for (const f of ['example-customer.json', 'example-vendor.json']) {
      for (const m of fs.readFileSync(path.join(projectRoot(), 'config', f), 'utf8').matchAll(/\b(?:us|eu|ap|ca|sa|me|af)-[a-z]+-\d\b/g)) regions.add(m[0]);
    }
    expect(regions.has('eu-west-1')).toBe(true);
    for (const r of regions) expect(Object.keys(PRICES)).toContain(r);
  });

  test('Spot is cheaper than on-demand, Multi-AZ dearer than one AZ, in every region', () => {
    for (const p of Object.values(PRICES)) {
      expect(p.fargate.spotX86_64.vcpuHour.usd).toBeLessThan(p.fargate.onDemand.ARM64.vcpuHour.usd);
      expect(p.fargate.onDemand.ARM64.vcpuHour.usd).toBeLessThan(p.fargate.onDemand.X86_64.vcpuHour.usd);
      for (const c of Object.values(p.rdsPostgres)) expect(c.multiAz.usd).toBeGreaterThan(c.singleAz.usd);
    }
  });
});

describe('errors: one line naming what is unknown', () => {
  const oneLine = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      const message = (e as Error).message;
      expect(message).not.toContain('\n');
      return message;
    }
    throw new Error('expected an error');
  };

  test('an unknown region', () => {
    expect(oneLine(() => estimateCost(readAssembly(plane), { region: 'xx-moon-1' })))
      .toMatch(/^Invalid setting '--region': region "xx-moon-1" is not in the price table of \d{4}-\d\d-\d\d .*Fix: use one of us-east-1, /);
  });

  test('an unknown DB instance class and cache node type', () => {
    const db = { Resources: { Db: { Type: 'AWS::RDS::DBInstance', Properties: { Engine: 'postgres', DBInstanceClass: 'db.x9.huge', MultiAZ: false, AllocatedStorage: 20 } } } };
    expect(oneLine(() => estimateCost(readAssembly(write('db', { 'Db.template.json': db })), { region: 'eu-west-1' })))
      .toMatch(/^Invalid setting 'Db\.template\.json#Db\.DBInstanceClass': DB instance class "db\.x9\.huge" is not in the price table of eu-west-1/);
    const cache = { Resources: { C: { Type: 'AWS::ElastiCache::ReplicationGroup', Properties: { CacheNodeType: 'cache.q1.giant', NumCacheClusters: 1 } } } };
    expect(oneLine(() => estimateCost(readAssembly(write('cache', { 'C.template.json': cache })))))
      .toMatch(/cache node type "cache\.q1\.giant" is not in the price table of us-east-1/);
  });

  test('not an assembly', () => {
    expect(oneLine(() => readAssembly(path.join(tmp, 'missing')))).toMatch(/missing is not a folder/);
    fs.mkdirSync(path.join(tmp, 'empty'));
    expect(oneLine(() => readAssembly(path.join(tmp, 'empty')))).toMatch(/has no \*\.template\.json/);
  });
});

describe('byoc cost', () => {
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out.push(a.join(' ')); });
    const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err.push(a.join(' ')); });
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((s) => { err.push(String(s)); return true; });
    try {
      return { code: await main(args), out: out.join('\n'), err: err.join('') };
    } finally {
      log.mockRestore();
      error.mockRestore();
      stderr.mockRestore();
    }
  };

  test('prints the breakdown, the assumptions with their defaults, and one summary line', async () => {
    const r = await run('cost', plane, '--region', 'us-east-1', '--schedule', 'business', '--spot', '--assume', 'endpointGbMonth=150');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^agents \(1\) +\$58\.17 +\$6\.58$/m);
    expect(r.out).toMatch(/^ {2}alpha +2 tasks x 1 vCPU, 2 GB, ARM64 +\$58\.17 +\$6\.58$/m);
    expect(r.out).toMatch(/endpointGbMonth=150 \(default 50\)/);
    expect(r.out).toMatch(/logGbPerTaskMonth=0\.5: /);
    // 150 GB through the endpoint: 1.00 more than with 50 GB
    const last = r.out.trim().split('\n').pop()!;
    expect(last).toBe(`estimated ${plane} in us-east-1: $193.84 a month always-on, $142.25 business hours + Spot (ratio 0.734); 2 ECS services in 2 templates, prices of ${PRICE_TABLE_DATE}`);
  });

  test('--json prints the estimate, the summary goes to stderr', async () => {
    const r = await run('cost', vendor, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.baseTotal).toBeCloseTo(140.7041, 4);
    expect(report.assumptions.natGbMonth).toBe(20);
    expect(r.err).toMatch(/^estimated .* \$140\.70 a month always-on/);
  });

  test('an unknown region, schedule or assumption is one line and exit 1', async () => {
    for (const [args, message] of [
      [['--region', 'xx-moon-1'], /^byoc: Invalid setting '--region': region "xx-moon-1" is not in the price table/],
      [['--schedule', 'nights'], /^byoc: Invalid setting '--schedule': "nights" is not a schedule/],
      [['--assume', 'lunarGb=3'], /^byoc: Invalid setting '--assume': "lunarGb=3" is not KEY=VALUE with a known KEY/],
    ] as const) {
      const r = await run('cost', plane, ...args);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err.trim()).toMatch(message);
      expect(r.err.trim()).not.toContain('\n');
    }
  });
});
