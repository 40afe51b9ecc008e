import { spawn } from 'child_process';
import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import canonicalize from 'canonicalize';
import { AgentSpec, AgentTrigger, catalogProblems, workSubject } from '../../agents/catalog';
import { projectRoot } from '../../lib/app';
import { BOUNDARY_CONTRACT, BoundaryContract, contractHash, Direction } from '../../lib/boundary-contract';
import { verifyBundle, signAssembly } from '../../lib/bundle';
import { CONTRACT_JSON_SCHEMA, CONTRACT_METADATA, contractEnvironment, loadContractFile, contractFromEnvironment, contractOfTemplate, validateContract } from '../../lib/contract-input';
import { ContractValidator, isRejection } from '../../lib/contract-validator';
import { CustomerCheck } from '../../control-plane/ingest/check';
import { loadConfig } from '../../agents/runtime/config';
import { main } from '../../bin/byoc';
import { metricsMessages } from '../../agents/platform/usage-meter';
import { PropError } from '../../lib/errors';
import { leakageBound } from '../../lib/leakage';
import { agentIdentities } from '../../lib/nats-config';
import { buildReport } from '../../lib/review/report';
import { Assembly } from '../../lib/review/assembly';
import { readModel } from '../../lib/review/model';
import { generateDevelopmentKeys, signerFor } from '../../lib/signer';
import { auditRecords, startGateway } from '../servers/gateway';
import { collect, eventually, Link, permissionErrors, startLink } from '../servers/link';
import { exampleProps, synthCustomerPlane } from '../synth';

/**
 * A third party's own product on the kit: its own boundary contract (two kinds, neither of the kit's) and its own
 * two agents, through the constructs' `contract` and `catalog` props.
 */
const SCANNER_CONTRACT: BoundaryContract = {
  version: 1,
  kinds: [
    {
      name: 'heartbeat', direction: Direction.CUSTOMER_TO_VENDOR, description: 'Liveness and queue depth of each scanner', optOut: false, maxBytes: 256,
      rateLimit: { perSecond: 1, burst: 10 },
      schema: {
        type: 'object', required: ['scanner', 'queueDepth', 'at'],
        fields: { scanner: { type: 'id', pattern: '^[a-z]{3,12}$', maxLength: 12 }, queueDepth: { type: 'integer', minimum: 0, maximum: 100000 }, at: { type: 'integer', minimum: 0, maximum: 4102444800000 } },
      },
    },
    {
      name: 'command', direction: Direction.VENDOR_TO_CUSTOMER, description: 'Pause or resume the scanners', optOut: false, maxBytes: 128,
      rateLimit: { perSecond: 0.5, burst: 2 },
      schema: { type: 'object', required: ['action', 'issuedAt'], fields: { action: { type: 'enum', values: ['pause', 'resume'] }, issuedAt: { type: 'integer', minimum: 0, maximum: 4102444800000 } } },
    },
  ],
};

const spec = (name: string, rest: Partial<AgentSpec>): AgentSpec => ({
  name, group: 'scanning', purpose: 'Scans.', trigger: AgentTrigger.REQUEST, cpu: 256, memoryMiB: 512, dataStores: [], secrets: [],
  subjects: { subscribe: [workSubject(name)], publish: [] }, ...rest,
});
const SCANNER_CATALOG: AgentSpec[] = [
  spec('scanner', { subjects: { subscribe: [workSubject('scanner'), 'boundary.inbox.command'], publish: ['boundary.outbox.heartbeat'] } }),
  spec('archivist', { trigger: AgentTrigger.EVENT, subjects: { subscribe: [workSubject('archivist'), 'events.scan.done'], publish: [] } }),
];

/** A deep copy with one change, for hostile variants. */
function variant(change: (c: any) => void): unknown {
  const c = JSON.parse(JSON.stringify(SCANNER_CONTRACT));
  change(c);
  return c;
}
const problemOf = (value: unknown) => {
  try {
    validateContract(value);
    return 'valid';
  } catch (e) {
    if (!(e instanceof PropError)) throw e;
    return e.message;
  }
};

describe('validateContract: a contract from outside the kit is taken only when it is enforceable as written', () => {
  test('the kit\'s contract and a third party\'s are valid; the result is a copy the caller cannot change afterwards', () => {
    expect(contractHash(validateContract(BOUNDARY_CONTRACT))).toBe(contractHash());
    const input = variant(() => undefined) as any;
    const taken = validateContract(input);
    input.kinds[0].maxBytes = 1048576;
    expect(taken.kinds[0].maxBytes).toBe(256);
    expect(contractHash(taken)).toBe(contractHash(SCANNER_CONTRACT));
  });

  test.each([
    ['a free-text field type', (c: any) => { c.kinds[0].schema.fields.note = { type: 'string', maxLength: 1000 }; }, /contract\.kinds\[0\]\.schema\.fields\.note\.type'.*must be one of/],
    ['an unknown key on a kind', (c: any) => { c.kinds[0].extra = true; }, /contract\.kinds\[0\]'.*unknown key "extra"/],
    ['an identifier without a length bound', (c: any) => { delete c.kinds[0].schema.fields.scanner.maxLength; }, /contract\.kinds\[0\]\.schema\.fields\.scanner'.*misses "maxLength"/],
    ['an unanchored pattern', (c: any) => { c.kinds[0].schema.fields.scanner.pattern = '[a-z]+'; }, /scanner\.pattern'.*only anchored patterns/],
    ['a pattern with a dot (any character)', (c: any) => { c.kinds[0].schema.fields.scanner.pattern = '^.{1,12}$'; }, /scanner\.pattern'.*not supported for counting/],
    ['a negated class', (c: any) => { c.kinds[0].schema.fields.scanner.pattern = '^[^"]{1,12}$'; }, /scanner\.pattern'.*negated class/],
    ['a range upside down', (c: any) => { c.kinds[0].schema.fields.queueDepth.minimum = 5; c.kinds[0].schema.fields.queueDepth.maximum = 1; }, /queueDepth'.*minimum 5 is above maximum 1/],
    ['a kind larger than the leaf carries', (c: any) => { c.kinds[0].maxBytes = 2 * 1048576; }, /kinds\[0\]\.maxBytes'.*must be <= 1048576/],
    ['a rate limit of zero', (c: any) => { c.kinds[0].rateLimit.perSecond = 0; }, /rateLimit\.perSecond'.*must be > 0/],
    ['two kinds of one name', (c: any) => { c.kinds[1].name = 'heartbeat'; }, /contract\.kinds'.*must be unique/],
    ['an inherited field name', (c: any) => { c.kinds[1].schema.fields.constructor = { type: 'integer', minimum: 0, maximum: 1 }; }, /field name "constructor" is not a plain identifier/],
    ['revealsShape naming no field', (c: any) => { c.kinds[0].revealsShape = ['missing']; }, /missing is not a field of its schema/],
    ['a required field not declared', (c: any) => { c.kinds[1].schema.required.push('ghost'); }, /required field ghost is not declared/],
    ['a direction of its own', (c: any) => { c.kinds[0].direction = 'both-ways'; }, /direction'.*must be one of "customer-to-vendor", "vendor-to-customer"/],
    ['no kinds', (c: any) => { c.kinds = []; }, /contract\.kinds'.*must NOT have fewer than 1 items/],
  ])('%s is refused, naming the path', (_what, change, message) => {
    expect(problemOf(variant(change))).toMatch(message);
  });

  test('a top-level alternation cannot leave one side unanchored: the validators admit exactly what the leakage bound counts', () => {
    const c = variant((x) => { x.kinds[0].schema.fields.scanner = { type: 'id', pattern: '^abc|xyz$', maxLength: 12 }; }) as BoundaryContract;
    const taken = validateContract(c);
    const validator = new ContractValidator(taken.kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR));
    const send = (scanner: string) => validator.check('heartbeat', Buffer.from(canonicalize({ at: 1, queueDepth: 0, scanner })!));
    expect(isRejection(send('abc'))).toBe(false);
    expect(isRejection(send('xyz'))).toBe(false);
    // As plain regular expressions, ^abc|xyz$ matches both; the contract reads it as one anchored alternation.
    expect([send('abcSECRET'), send('SECRETxyz')].map((r) => (isRejection(r) ? r.reason : 'accepted'))).toEqual(['schema', 'schema']);
    expect(leakageBound(taken.kinds).kinds[0].fields.find((f) => f.field === 'scanner')!.bits).toBe(1);
  });

  test('config/boundary-contract.schema.json (for editors) is the schema validateContract applies; config/boundary-contract.json is the kit\'s contract', () => {
    const dir = path.join(projectRoot(), 'config');
    // Out of date? see "Boundary contract" in the README for the command that writes both.
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'boundary-contract.schema.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(CONTRACT_JSON_SCHEMA)));
    expect(contractHash(loadContractFile(path.join(dir, 'boundary-contract.json')))).toBe(contractHash());
    expect(() => loadContractFile(path.join(dir, 'missing.json'))).toThrow(/^Invalid setting '--contract': cannot read .*missing\.json \(ENOENT\)/);
  });

  test('values that are not JSON data are refused before anything else', () => {
    expect(problemOf(undefined)).toMatch(/Invalid prop 'contract'/);
    expect(problemOf({ version: 1n, kinds: [] })).toMatch(/Invalid prop 'contract': is not JSON data/);
    expect(problemOf('{"version":1}')).toMatch(/Invalid prop 'contract': must be object/);
  });
});

describe('contractFromEnvironment: what the gateway, the agents and ingest enforce', () => {
  test('unset is the kit\'s own; set, it must be valid and carry its hash', () => {
    expect(contractFromEnvironment({})).toBe(BOUNDARY_CONTRACT);
    expect(contractHash(contractFromEnvironment(contractEnvironment(SCANNER_CONTRACT)))).toBe(contractHash(SCANNER_CONTRACT));
    const env = contractEnvironment(SCANNER_CONTRACT);
    expect(() => contractFromEnvironment({ BYOC_CONTRACT: env.BYOC_CONTRACT })).toThrow(/BYOC_CONTRACT_HASH is missing/);
    expect(() => contractFromEnvironment({ ...env, BYOC_CONTRACT_HASH: contractHash() })).toThrow(/has hash [0-9a-f]{12}, not [0-9a-f]{12}/);
    expect(() => contractFromEnvironment({ BYOC_CONTRACT_HASH: contractHash(SCANNER_CONTRACT) })).toThrow(/BYOC_CONTRACT is unset/);
    expect(() => contractFromEnvironment({ BYOC_CONTRACT: '{"version":1,', BYOC_CONTRACT_HASH: 'x' })).toThrow(/BYOC_CONTRACT is not JSON/);
    const loose = JSON.stringify(variant((c) => { c.kinds[0].schema.fields.scanner.pattern = '.*'; }));
    expect(() => contractFromEnvironment({ BYOC_CONTRACT: loose, BYOC_CONTRACT_HASH: 'x' })).toThrow(/Invalid setting 'BYOC_CONTRACT\.kinds\[0\]\.schema\.fields\.scanner\.pattern'/);
  });
});

describe('the agent runtime builds what it sends by the plane\'s contract', () => {
  const base = { BYOC_AGENT: 'usage-meter', BYOC_CUSTOMER: 'example', BYOC_TRIGGER: 'schedule', BYOC_SCHEDULE: 'cron(* * * * ? *)', NATS_URL: 'x',
    NATS_PASSWORD_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:byoc/example/nats/usage-meter-AbCdEf', NATS_INBOX_PREFIX: '_INBOX_example.usage-meter' };
  test('BYOC_CONTRACT is read at start: valid with its hash, else the runtime refuses its configuration', () => {
    expect(loadConfig(base).contract).toBe(BOUNDARY_CONTRACT);
    const narrowed = { version: 9, kinds: BOUNDARY_CONTRACT.kinds.map((k) => (k.name === 'metrics' ? { ...k, schema: { ...k.schema, fields: { ...k.schema.fields, points: { ...(k.schema.fields.points as any), maxItems: 2 } } } } : k)) } as BoundaryContract;
    const config = loadConfig({ ...base, ...contractEnvironment(narrowed) });
    expect(contractHash(config.contract)).toBe(contractHash(narrowed));
    expect(() => loadConfig({ ...base, ...contractEnvironment(narrowed), BYOC_CONTRACT_HASH: contractHash() })).toThrow(/^configuration BYOC_CONTRACT: BYOC_CONTRACT has hash/);
    // The usage-meter splits a window by that contract's bounds, not the kit's.
    const points = ['a', 'b', 'c', 'd', 'e'].map((x) => ({ metric: 'agent.requests', agent: `agent-${x}`, value: 1 }));
    expect(metricsMessages(0, 60000, points, config.contract)).toHaveLength(3);
    expect(metricsMessages(0, 60000, points)).toHaveLength(1);
  });
});

describe('a third party\'s own contract and catalog through the construct API', () => {
  let plane: ReturnType<typeof synthCustomerPlane>;
  beforeAll(() => {
    plane = synthCustomerPlane(exampleProps({ catalog: SCANNER_CATALOG, contract: SCANNER_CONTRACT, llm: undefined }));
  });

  test('the template records the contract; the leaf, the gateway and the agents are generated from it and nothing of the kit\'s', () => {
    const root = plane.templates['ByocCustomerPlane.template.json'];
    const record = contractOfTemplate(root)!;
    expect({ version: record.version, hash: record.hash }).toEqual({ version: 1, hash: contractHash(SCANNER_CONTRACT) });
    expect(root.Metadata[CONTRACT_METADATA].contract).toBe(canonicalize(SCANNER_CONTRACT));
    const containers = Object.values(plane.templates).flatMap((t: any) => Object.values(t.Resources ?? {}))
      .filter((r: any) => r.Type === 'AWS::ECS::TaskDefinition').flatMap((r: any) => r.Properties.ContainerDefinitions);
    const env = (c: any): Record<string, any> => Object.fromEntries((c.Environment ?? []).map((e: any) => [e.Name, e.Value]));
    const gateway = env(containers.find((c: any) => env(c).BYOC_AGENTS !== undefined));
    expect(gateway).toMatchObject(contractEnvironment(SCANNER_CONTRACT));
    expect(JSON.parse(gateway.BYOC_AGENTS)).toEqual({ scanner: ['heartbeat'], archivist: [] });
    const leaf = containers.map(env).find((e) => e.BYOC_NATS_CONFIG?.includes('leafnodes'))!.BYOC_NATS_CONFIG as string;
    expect(leaf).toContain(`boundary contract v1 (${contractHash(SCANNER_CONTRACT)})`);
    expect(leaf).toContain('publish: { allow: ["byoc.example.out.heartbeat"] }');
    expect(leaf).toContain('"byoc.example.in.command"');
    for (const kitKind of BOUNDARY_CONTRACT.kinds) expect(leaf).not.toContain(`.${kitKind.name}"`);
    // The agent that sends a kind gets the contract; the one that sends none does not.
    const agentEnv = (name: string) => containers.map(env).find((e) => e.BYOC_AGENT === name);
    expect(agentEnv('scanner')).toMatchObject(contractEnvironment(SCANNER_CONTRACT));
    expect(agentEnv('archivist')!.BYOC_CONTRACT).toBeUndefined();
  });

  test('signing records the plane\'s own contract; the review report shows it, not the kit\'s', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-contract-'));
    try {
      const keys = generateDevelopmentKeys(path.join(tmp, 'keys'));
      const release = await signAssembly(plane.outdir, path.join(tmp, 'bundle'), signerFor(keys.privateKey), { version: '1.0.0', hubEndpoint: 'tls://hub.vendor.example:7422' });
      expect({ v: release.contractVersion, h: release.contractHash }).toEqual({ v: 1, h: contractHash(SCANNER_CONTRACT) });
      expect(verifyBundle(path.join(tmp, 'bundle'), keys.publicKey, { stateDir: path.join(tmp, 'state') })).toMatchObject({ release: { contractHash: contractHash(SCANNER_CONTRACT) } });
      const report = JSON.stringify(buildReport(readModel(new Assembly(plane.outdir))));
      expect(report).toContain(contractHash(SCANNER_CONTRACT));
      expect(report).toContain('the vendor\'s own, not the contract of this kit');
      expect(report).toContain('the boundary gateway enforces this same contract');
      expect(report).not.toContain('byoc.example.out.workflow');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a catalog declaring a kind its contract does not have, or an invalid contract, fails synth naming the prop', () => {
    const kitAgent = spec('scanner', { subjects: { subscribe: [workSubject('scanner')], publish: ['boundary.outbox.workflow'] } });
    expect(catalogProblems([kitAgent], SCANNER_CONTRACT)[0]).toMatchObject({ field: 'catalog[0].subjects.publish', fix: 'use one of boundary.outbox.heartbeat' });
    expect(() => synthCustomerPlane(exampleProps({ catalog: [kitAgent], contract: SCANNER_CONTRACT, llm: undefined }))).toThrow(/Invalid prop 'catalog\[0\]\.subjects\.publish'/);
    const loose = variant((c) => { c.kinds[0].schema.fields.scanner.pattern = '^.*$'; }) as BoundaryContract;
    expect(() => synthCustomerPlane(exampleProps({ catalog: SCANNER_CATALOG, contract: loose, llm: undefined }))).toThrow(/Invalid prop 'contract\.kinds\[0\]\.schema\.fields\.scanner\.pattern'/);
  });
});

describe('byoc nats-config --contract', () => {
  test('writes the leaf configuration of a vendor\'s own contract; a file that is not one is refused in one line', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-contract-'));
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const file = path.join(tmp, 'contract.json');
      fs.writeFileSync(file, JSON.stringify(SCANNER_CONTRACT));
      expect(await main(['nats-config', '--customer', 'example', '--out', tmp, '--contract', file])).toBe(0);
      const leaf = fs.readFileSync(path.join(tmp, 'leaf.conf'), 'utf8');
      expect(leaf).toContain(`boundary contract v1 (${contractHash(SCANNER_CONTRACT)})`);
      expect(leaf).toContain('publish: { allow: ["byoc.example.out.heartbeat"] }');
      fs.writeFileSync(file, JSON.stringify({ version: 1 }));
      expect(await main(['nats-config', '--customer', 'example', '--out', tmp, '--contract', file])).toBe(1);
      expect(err.mock.calls.map((c) => c.join(' '))).toEqual([expect.stringMatching(/^byoc: Invalid setting '--contract': misses "kinds"\. Fix: /)]);
    } finally {
      log.mockRestore();
      err.mockRestore();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('the vendor\'s ingest checks each crossing against the contract it was given', () => {
  test('the contract\'s kinds are accepted, the kit\'s kinds are unknown, values outside its schema refused', () => {
    const key = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const check = new CustomerCheck({ customerId: 'example', auditPublicKeyPem: key, contract: SCANNER_CONTRACT });
    const heartbeat = canonicalize({ at: 1790000000000, queueDepth: 7, scanner: 'alpha' })!;
    expect(check.check('byoc.example.out.heartbeat', Buffer.from(heartbeat))).toMatchObject({ kind: { name: 'heartbeat' } });
    expect(check.check('byoc.example.out.workflow', Buffer.from('{}'))).toMatchObject({ reason: 'unknown-kind' });
    expect(check.check('byoc.example.out.heartbeat', Buffer.from(heartbeat.replace('alpha', 'ALPHA')))).toMatchObject({ reason: 'schema' });
    // Without a contract of its own, the kit's: the vendor's kind is unknown there.
    const kit = new CustomerCheck({ customerId: 'example', auditPublicKeyPem: key });
    expect(kit.check('byoc.example.out.heartbeat', Buffer.from(heartbeat))).toMatchObject({ reason: 'unknown-kind' });
  });
});

describe('the bundled gateway enforces the contract it is given, on a real leaf and hub', () => {
  const C = 'example';
  const keys = generateKeyPairSync('ed25519');
  let link: Link;
  beforeAll(async () => {
    link = await startLink({ customerId: C, contract: SCANNER_CONTRACT, agents: agentIdentities(SCANNER_CATALOG, { customerId: C, contract: SCANNER_CONTRACT }) });
  });
  afterAll(async () => link?.stop());

  test('its kinds cross both ways; values outside its schema are refused and recorded; the kit\'s kinds cannot even be sent', async () => {
    const gateway = await startGateway(link, { privateKey: keys.privateKey, env: contractEnvironment(SCANNER_CONTRACT) });
    try {
      const vendor = await link.vendor();
      const atVendor = collect(vendor, `byoc.${C}.out.heartbeat`);
      await atVendor.ready;
      const scanner = await link.agent('scanner');
      const inbox = collect(scanner, 'boundary.inbox.command');
      await inbox.ready;
      const heartbeat = canonicalize({ at: 1790000000000, queueDepth: 7, scanner: 'alpha' })!;
      scanner.publish('boundary.outbox.scanner.heartbeat', heartbeat);
      scanner.publish('boundary.outbox.scanner.heartbeat', canonicalize({ at: 1790000000000, queueDepth: 7, scanner: 'SELECT * FROM users' })!);
      // A kind of the kit's contract: the leaf's rules, generated from this contract, do not even let it reach the gateway.
      const denied = permissionErrors(scanner);
      scanner.publish('boundary.outbox.scanner.workflow', canonicalize({ workflowId: '01J00000000000000000000000', stepId: 1 })!);
      vendor.publish(`byoc.${C}.in.command`, canonicalize({ action: 'pause', issuedAt: 1790000000000 })!);
      vendor.publish(`byoc.${C}.in.command`, canonicalize({ action: 'exfiltrate', issuedAt: 1790000000000 })!);
      await eventually(() => atVendor.payloads.length >= 1 && inbox.payloads.length >= 1 && auditRecords(gateway.auditLog).filter((r) => r.reason).length >= 2 && denied.length >= 1, 10000, 'crossings and refusals')
        .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify({ vendor: atVendor.subjects, inbox: inbox.payloads, audit: auditRecords(gateway.auditLog), denied, out: gateway.output().slice(-3000) })}`); });
      await new Promise((r) => setTimeout(r, 300));
      expect(atVendor.subjects).toEqual([`byoc.${C}.out.heartbeat`]);
      expect(atVendor.payloads).toEqual([heartbeat]);
      expect(inbox.payloads).toEqual([canonicalize({ action: 'pause', issuedAt: 1790000000000 })]);
      const refused = auditRecords(gateway.auditLog).filter((r) => r.reason).map((r) => `${r.kind}:${r.reason}`).sort();
      expect(refused).toEqual(['command:schema', 'heartbeat:schema']);
      expect(denied.join('\n')).toMatch(/boundary\.outbox\.scanner\.workflow/);
    } finally {
      await gateway.stop();
    }
  });

  test('a contract that does not match its hash stops the gateway before it connects (exit 2, the reason logged)', async () => {
    const env = { ...contractEnvironment(SCANNER_CONTRACT), BYOC_CONTRACT_HASH: contractHash() };
    const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'boundary-gateway.js')], {
      env: { PATH: process.env.PATH!, BYOC_CUSTOMER: C, NATS_URL: `127.0.0.1:${link.leafPort}`, BYOC_GATEWAY_LOCAL_PASSWORD: 'x', BYOC_GATEWAY_REMOTE_PASSWORD: 'x', BYOC_PROVISIONER_PASSWORD: 'x', BYOC_BACKLOG_REPORTER_PASSWORD: 'x',
        BYOC_AUDIT_LOG: path.join(link.dir, 'never.log'), BYOC_AUDIT_KEY: path.join(link.dir, 'none.pem'), BYOC_AGENTS: '{}', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(JSON.parse(out.trim().split('\n')[0])).toMatchObject({ msg: 'invalid configuration', error: expect.stringMatching(/^BYOC_CONTRACT has hash [0-9a-f]{12}, not [0-9a-f]{12} as BYOC_CONTRACT_HASH says$/) });
    expect(fs.existsSync(path.join(link.dir, 'never.log'))).toBe(false);
  });
});
