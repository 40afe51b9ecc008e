import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AGENT_CATALOG } from '../../agents/catalog';
import { BOUNDARY_CONTRACT } from '../../lib/boundary-contract';
import { main } from '../../bin/byoc';
import { signAssembly } from '../../lib/bundle';
import { BundleDiff, diffBundles, diffSummary, formatDiff } from '../../lib/bundle-diff';
import { generateDevelopmentKeys, signerFor } from '../../lib/signer';
import { exampleProps, synthCustomerPlane } from '../synth';

const dirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

/** Runs the CLI in-process; returns exit code and what it printed. */
async function byoc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out += `${a.join(' ')}\n`; });
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err += `${a.join(' ')}\n`; });
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore(); error.mockRestore();
  }
}

const props = exampleProps();
const RUNTIME_REPO = '111122223333.dkr.ecr.eu-west-1.${AWS::URLSuffix}/byoc/agent-runtime';
const oldDigest = props.images.agentRuntime.split('@')[1];
const newDigest = `sha256:${'1'.repeat(64)}`;

let keys: ReturnType<typeof generateDevelopmentKeys>;
let before: string;
let after: string;
let d: BundleDiff;

beforeAll(async () => {
  keys = generateDevelopmentKeys(tmp('keys'));
  const sign = async (outdir: string, version: string) => {
    const out = path.join(tmp('bundle'), 'b');
    await signAssembly(outdir, out, signerFor(keys.privateKey), { version, hubEndpoint: 'tls://hub.vendor.example:7422' });
    return out;
  };
  // Two releases of one customer's plane: the second keeps its data (retainData: a backup plan whose role
  // AWS Backup assumes, one more IAM statement) and runs a new agent-runtime image.
  before = await sign(synthCustomerPlane(props).outdir, '1.0.0');
  after = await sign(synthCustomerPlane({ ...props, retainData: true, images: { ...props.images, agentRuntime: `${props.images.agentRuntime.split('@')[0]}@${newDigest}` } }).outdir, '1.1.0');
  d = diffBundles(before, after, { publicKeyFile: keys.publicKey });
});

test('two real bundles: the added IAM statement and the changed image digest, nothing else of either', () => {
  expect(d.iam).toEqual([{
    stack: 'ByocCustomerPlane', logicalId: expect.stringMatching(/^PlaneDataBackupPlanStoresRole/), type: 'AWS::IAM::Role', document: 'AssumeRolePolicyDocument',
    change: 'added', statement: { Action: ['sts:AssumeRole'], Effect: 'Allow', Principal: { Service: ['backup.amazonaws.com'] } },
    summary: 'Allow sts:AssumeRole for Service backup.amazonaws.com',
  }]);
  expect(d.images).toEqual([{ repository: RUNTIME_REPO, change: 'changed', old: oldDigest, new: newDigest }]);
  expect(d.contract).toBeUndefined();
  expect(d.securityGroupRules).toEqual([]);
  expect(d.stacks).toEqual({ added: [], removed: [] });
  expect(d).toMatchObject({ old: { version: '1.0.0', customerId: 'example', verified: true }, new: { version: '1.1.0', customerId: 'example', verified: true } });
});

test('resources by stack and logical ID: added in the root stack, changed in the root and in nested stacks', () => {
  const added = d.resources.filter((r) => r.change === 'added').map((r) => `${r.stack} ${r.type}`);
  expect(added).toEqual(expect.arrayContaining(['ByocCustomerPlane AWS::Backup::BackupVault', 'ByocCustomerPlane AWS::Backup::BackupPlan', 'ByocCustomerPlane AWS::IAM::Role']));
  expect(d.resources.filter((r) => r.change === 'removed')).toEqual([]);
  // The new image: every agent's task definition in its group's nested stack, and the gateway's in the root.
  const tasks = d.resources.filter((r) => r.type === 'AWS::ECS::TaskDefinition');
  expect(tasks.length).toBe(AGENT_CATALOG.length + 1);
  for (const t of tasks) expect(t).toMatchObject({ change: 'changed', fields: ['Properties.ContainerDefinitions'] });
  expect(new Set(tasks.filter((t) => t.stack !== 'ByocCustomerPlane').map((t) => t.stack.split('/')[0]))).toEqual(new Set(['ByocCustomerPlane']));
  expect(tasks.filter((t) => /^ByocCustomerPlane\/PlaneAgents\w+NestedStackResource\w+$/.test(t.stack))).toHaveLength(AGENT_CATALOG.length);
  // retainData keeps the key: a policy attribute, not a property.
  expect(d.resources.find((r) => /^PlaneKey/.test(r.logicalId))).toMatchObject({ type: 'AWS::KMS::Key', change: 'changed', fields: ['DeletionPolicy', 'UpdateReplacePolicy'] });
});

test('the other way round, the statement is removed and the digest changes back', () => {
  const back = diffBundles(after, before);
  expect(back.iam).toEqual([expect.objectContaining({ change: 'removed', summary: 'Allow sts:AssumeRole for Service backup.amazonaws.com' })]);
  expect(back.images).toEqual([{ repository: RUNTIME_REPO, change: 'changed', old: newDigest, new: oldDigest }]);
  expect(back).toMatchObject({ old: { verified: false }, new: { verified: false } });
});

test('security-group rules added and removed, inline and standalone; a description change alone is not a rule change', () => {
  const edited = path.join(tmp('edit'), 'b');
  fs.cpSync(before, edited, { recursive: true });
  const file = path.join(edited, 'ByocCustomerPlane.template.json');
  const t = JSON.parse(fs.readFileSync(file, 'utf8'));
  const [sgId] = Object.entries<any>(t.Resources).find(([id, r]) => r.Type === 'AWS::EC2::SecurityGroup' && id.startsWith('PlaneAgentSecurityGroup'))!;
  t.Resources[sgId].Properties.SecurityGroupEgress = [{ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443, Description: 'the internet' }];
  const standalone = Object.entries<any>(t.Resources).filter(([, r]) => r.Type === 'AWS::EC2::SecurityGroupEgress' && r.Properties.GroupId?.['Fn::GetAtt']?.[0] === sgId);
  const [goneId, gone] = standalone.find(([, r]) => r.Properties.FromPort === 4318)!;
  delete t.Resources[goneId];
  const [, described] = standalone.find(([, r]) => r.Properties.FromPort === 4222)!;
  described.Properties.Description = 'reworded';
  fs.writeFileSync(file, JSON.stringify(t));

  const e = diffBundles(before, edited);
  expect(e.securityGroupRules).toHaveLength(2);
  expect(e.securityGroupRules).toEqual(expect.arrayContaining([
    { stack: 'ByocCustomerPlane', group: `ByocCustomerPlane/${sgId}`, direction: 'egress', change: 'added', ports: 'tcp 443', peer: 'cidr 0.0.0.0/0', description: 'the internet' },
    { stack: 'ByocCustomerPlane', group: `ByocCustomerPlane/${sgId}`, direction: 'egress', change: 'removed', ports: 'tcp 4318', peer: `security group ByocCustomerPlane/${gone.Properties.DestinationSecurityGroupId['Fn::GetAtt'][0]}`, description: 'OTLP traces and metrics' },
  ]));
  expect(e.resources).toEqual(expect.arrayContaining([
    { stack: 'ByocCustomerPlane', logicalId: goneId, type: 'AWS::EC2::SecurityGroupEgress', change: 'removed' },
    { stack: 'ByocCustomerPlane', logicalId: sgId, type: 'AWS::EC2::SecurityGroup', change: 'changed', fields: ['Properties.SecurityGroupEgress'] },
  ]));
  // The edited bundle no longer verifies: diff with --public-key says which file changed.
  expect(() => diffBundles(before, edited, { publicKeyFile: keys.publicKey })).toThrow('file ByocCustomerPlane.template.json was changed after signing (SHA-256 mismatch)');
});

test('byoc diff prints the changes and a summary line; --json prints the same diff as JSON', async () => {
  const r = await byoc('diff', before, after, '--public-key', keys.publicKey);
  expect(r).toMatchObject({ code: 0, err: '' });
  const lines = r.out.trimEnd().split('\n');
  expect(lines).toEqual(expect.arrayContaining([
    `old: ${before} (release 1.0.0, customer example)`,
    `new: ${after} (release 1.1.0, customer example)`,
    expect.stringMatching(/^contract: unchanged \(v\d+ [0-9a-f]{64}\)$/),
    `  ~ ${RUNTIME_REPO}: ${oldDigest} -> ${newDigest}`,
    expect.stringMatching(/^ {2}ByocCustomerPlane\/PlaneDataBackupPlanStoresRole\w+ \(AWS::IAM::Role\) AssumeRolePolicyDocument:$/),
    '    + Allow sts:AssumeRole for Service backup.amazonaws.com',
  ]));
  expect(lines.join('\n')).toBe(`${formatDiff(d)}\n${diffSummary(d)}`);
  expect(lines[lines.length - 1]).toMatch(new RegExp(`^compared ${before} \\(1\\.0\\.0\\) with ${after} \\(1\\.1\\.0\\); \\d+ resources added, 0 removed, \\d+ changed in \\d+ stacks; 1 IAM statement added, 0 removed; 0 security-group rules added, 0 removed; 1 image changed; contract unchanged; both bundles verified$`));

  const json = await byoc('diff', before, after, '--json');
  expect(json.code).toBe(0);
  expect(JSON.parse(json.out)).toEqual(JSON.parse(JSON.stringify({ ...d, old: { ...d.old, verified: false }, new: { ...d.new, verified: false } })));
  expect(json.err).toMatch(/^compared .*; signatures not checked \(pass --public-key to verify both\)\n$/);
});

test('byoc diff refuses a folder that is not a bundle, in one line', async () => {
  const empty = tmp('empty');
  expect(await byoc('diff', before, empty)).toEqual({ code: 1, out: '', err: `byoc: ${empty} has no byoc-release.json: give two bundle folders that byoc sign wrote\n` });
});

test('a release that changes the contract: the kinds added, removed and changed, field by field, read from both bundles\' templates', async () => {
  const kinds = BOUNDARY_CONTRACT.kinds
    .filter((k) => k.name !== 'fingerprint')
    .map((k) => (k.name === 'usage' ? { ...k, maxBytes: 2048, schema: { ...k.schema, fields: { ...k.schema.fields, llmTokensCached: { type: 'integer' as const, minimum: 0, maximum: 1e12 } } } } : k));
  // The catalog without the pattern-miner, the one agent that sends fingerprints.
  const catalog = AGENT_CATALOG.filter((a) => a.name !== 'pattern-miner');
  const changed = path.join(tmp('bundle'), 'b');
  await signAssembly(synthCustomerPlane({ ...props, catalog, contract: { version: BOUNDARY_CONTRACT.version + 1, kinds } }).outdir, changed, signerFor(keys.privateKey), { version: '1.2.0', hubEndpoint: 'tls://hub.vendor.example:7422' });
  const c = diffBundles(before, changed, { publicKeyFile: keys.publicKey });
  expect(c.contract!.kinds).toEqual([
    { kind: 'fingerprint', direction: 'customer-to-vendor', change: 'removed' },
    { kind: 'usage', direction: 'customer-to-vendor', change: 'changed', details: ['maxBytes 1024 -> 2048', '+ field llmTokensCached {"maximum":1000000000000,"minimum":0,"type":"integer"}'] },
  ]);
  const text = formatDiff(c).split('\n');
  expect(text).toEqual(expect.arrayContaining(['  - kind fingerprint (customer-to-vendor)', '  ~ kind usage (customer-to-vendor):', '      maxBytes 1024 -> 2048']));
  expect(diffSummary(c)).toContain('contract changed (0 kinds added, 1 removed, 1 changed)');
});
