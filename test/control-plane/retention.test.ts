import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Match } from 'aws-cdk-lib/assertions';
import { BOUNDARY_CONTRACT, MessageKind } from '../../lib/boundary-contract';
import { canonicalBytes, ContractValue } from '../../lib/contract-validator';
import { loadControlPlaneConfig } from '../../control-plane/config';
import {
  createIngestTables, DeploymentMode, formatCancelledAt, IngestStore, IngestTables, ingestSecretName, Provenance, RegistryReader, REGISTRY_TAGS, RETENTION, TTL_ATTRIBUTE,
} from '../../control-plane/ingest';
import { expiresAt, isServed, sweepRetention } from '../../control-plane/ingest/retention';
import { startMoto, MotoServer } from '../servers/moto';
import { exampleAppProps, resourcesOf, synthControl } from './synth';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from '../../lib/app';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5);
const kind = (name: string) => BOUNDARY_CONTRACT.kinds.find((k) => k.name === name)! as MessageKind;
const usage = (periodStart: number): ContractValue => ({ periodStart, periodEnd: periodStart + 300000, agent: 'reviewer', invocations: 1, computeSeconds: 2, llmTokensIn: 3, llmTokensOut: 4 });
const workflow = (startedAt: number): ContractValue => ({ workflowId: '01HZX3K9W6Q2B7C8D9E0F1G2H3', status: 'succeeded', statusCode: 200, startedAt, durationMs: 10 });
const metrics = (windowStart: number): ContractValue => ({ windowStart, windowEnd: windowStart + 60000, points: [{ metric: 'requests', agent: 'reviewer', value: 1 }] });
const rejection = (sha: string) => ({ kind: 'usage', subject: 'byoc.acme.out.usage', size: 10, sha256: sha, reason: 'schema' as const, detail: '/ type' });

describe('retention per deployment mode, on moto DynamoDB', () => {
  let moto: MotoServer;
  let ddb: DynamoDBClient;
  let sm: SecretsManagerClient;
  let n = 0;
  beforeAll(async () => {
    moto = await startMoto();
    const aws = { endpoint: moto.endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    ddb = new DynamoDBClient(aws);
    sm = new SecretsManagerClient(aws);
  });
  afterAll(async () => { ddb?.destroy(); sm?.destroy(); await moto?.stop(); });

  /** Fresh tables, and a store of `mode` that wrote, for each customer (acme and beta), one item of each kind at `at`. */
  async function seeded(mode: DeploymentMode, at: number, customers: readonly string[] = ['acme', 'beta']): Promise<IngestTables> {
    n++;
    const tables: IngestTables = { usage: `u${n}`, metrics: `m${n}`, workflow: `w${n}`, learningPool: `p${n}`, rejections: `r${n}` };
    await createIngestTables(ddb, tables);
    const store = new IngestStore(ddb, tables, mode);
    let seq = 1;
    for (const customerId of customers) {
      const from = (): Provenance => ({ customerId, streamSeq: seq++, storedAtMs: at });
      await store.store(kind('usage'), usage(at), Buffer.from('u'), from());
      await store.store(kind('workflow'), workflow(at), canonicalBytes(workflow(at)), from());
      await store.store(kind('metrics'), metrics(at), Buffer.from('m'), from());
      expect(await store.reject(rejection(`${customerId}`.padEnd(64, '0')), from())).toBe(true);
    }
    return tables;
  }
  const all = async (tables: IngestTables) => {
    const out: Record<string, any[]> = {};
    for (const role of ['usage', 'metrics', 'workflow', 'rejections'] as const) {
      out[role] = (await ddb.send(new ScanCommand({ TableName: tables[role] }))).Items ?? [];
    }
    return out;
  };
  const count = (items: Record<string, any[]>, pred: (i: any) => boolean = () => true) => Object.values(items).flat().filter(pred).length;

  test('byoc writes no TTL and the sweep deletes nothing, however old', async () => {
    const tables = await seeded('byoc', T0);
    const items = await all(tables);
    expect(count(items)).toBe(10); // 2 customers x (usage, workflow, metrics, rejection, its counter)
    expect(count(items, (i) => i[TTL_ATTRIBUTE] !== undefined)).toBe(0);
    expect(await sweepRetention(ddb, tables, 'byoc', T0 + 3650 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    expect(count(await all(tables))).toBe(10);
  });

  test('trial: every item carries a TTL at day 22; soft delete from day 14, hard delete at day 22', async () => {
    const tables = await seeded('trial', T0);
    const items = await all(tables);
    expect(count(items, (i) => Number(i[TTL_ATTRIBUTE]?.N) === (T0 + 22 * DAY) / 1000)).toBe(10);
    // Day 13: nothing happens.
    expect(await sweepRetention(ddb, tables, 'trial', T0 + 13 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    // Day 14: every item with a storage time is marked and no longer served (the rejection counters have none:
    // they go with their TTL).
    expect(await sweepRetention(ddb, tables, 'trial', T0 + 14 * DAY)).toEqual({ softDeleted: 8, hardDeleted: 0 });
    expect(count(await all(tables), (i) => !isServed(i))).toBe(8);
    expect(await sweepRetention(ddb, tables, 'trial', T0 + 15 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 0 }); // idempotent
    // Day 22: gone, without waiting for DynamoDB's TTL (which moto does not run).
    expect(await sweepRetention(ddb, tables, 'trial', T0 + 22 * DAY - 1)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    expect(await sweepRetention(ddb, tables, 'trial', T0 + 22 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 10 });
    expect(count(await all(tables))).toBe(0);
  });

  test('starter: a 90-day rolling window, audit metadata (rejections) kept, 30 days of grace after a cancellation', async () => {
    const tables = await seeded('starter', T0);
    const items = await all(tables);
    expect(items.rejections.every((i) => i[TTL_ATTRIBUTE] === undefined)).toBe(true);
    expect(count(items, (i) => Number(i[TTL_ATTRIBUTE]?.N) === (T0 + 90 * DAY) / 1000)).toBe(6);
    // beta cancels at day 10: its items stop being served at once and go 30 days later; acme's stay.
    const cancelled = new Map([['beta', T0 + 10 * DAY]]);
    expect(await sweepRetention(ddb, tables, 'starter', T0 + 10 * DAY, cancelled)).toEqual({ softDeleted: 3, hardDeleted: 0 });
    expect((await all(tables)).usage.filter((i) => !isServed(i)).map((i) => i.customerId.S)).toEqual(['beta']);
    expect(await sweepRetention(ddb, tables, 'starter', T0 + 40 * DAY - 1, cancelled)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    expect(await sweepRetention(ddb, tables, 'starter', T0 + 40 * DAY, cancelled)).toEqual({ softDeleted: 0, hardDeleted: 3 });
    let left = await all(tables);
    expect(count(left)).toBe(7); // acme's 3 and both customers' rejection records and counters
    expect(left.rejections.map((i) => i.customerId.S).sort()).toEqual(['acme', 'acme', 'beta', 'beta']);
    // Day 90: acme's window has passed; the audit metadata stays.
    expect(await sweepRetention(ddb, tables, 'starter', T0 + 90 * DAY, cancelled)).toEqual({ softDeleted: 0, hardDeleted: 3 });
    left = await all(tables);
    expect([count(left), left.rejections.length]).toEqual([4, 4]);
  });

  /**
   * A registry under its own prefix whose ingest secrets carry the `byoc:cancelled-at` tags given, as byoc customer
   * cancel writes them (or a hand-written value), and the reader the ingest service sweeps with. The reader lists
   * names and tags only: the secrets' values are never read for cancellations.
   */
  async function registry(tags: Record<string, string | undefined>): Promise<RegistryReader> {
    const prefix = `retention-${++n}/customers/`;
    for (const [customerId, cancelledAt] of Object.entries(tags)) {
      await sm.send(new CreateSecretCommand({
        Name: ingestSecretName(customerId, prefix), SecretString: '{}',
        Tags: [{ Key: REGISTRY_TAGS.customer, Value: customerId }, ...(cancelledAt !== undefined ? [{ Key: REGISTRY_TAGS.cancelledAt, Value: cancelledAt }] : [])],
      }));
    }
    return new RegistryReader(sm, { prefix });
  }
  const of = (items: Record<string, any[]>, customerId: string) => Object.values(items).flat().filter((i) => i.customerId?.S === customerId);

  test('starter, with the cancellations read from the registry: a cancelled customer\'s items are kept (not served) until day 30 after the cancellation, then deleted; the others are untouched, a malformed time counted', async () => {
    const tables = await seeded('starter', T0, ['acme', 'beta', 'gamma']);
    const cancelledAt = T0 + 10 * DAY;
    const reader = await registry({ acme: formatCancelledAt(cancelledAt), beta: undefined, gamma: '2026-01-15' });
    const c = await reader.cancellations();
    expect([...c.cancelledAt]).toEqual([['acme', cancelledAt]]);
    expect(c.malformed).toEqual([{ customerId: 'gamma', reason: 'the tag byoc:cancelled-at "2026-01-15" is not a time as YYYY-MM-DDTHH:MM:SS.sssZ' }]);
    const sweep = async (at: number) => sweepRetention(ddb, tables, 'starter', at, (await reader.cancellations()).cancelledAt);

    // Before the cancellation nothing happens; at it, acme's usage, metrics and workflow are marked (starter keeps audit metadata).
    expect(await sweep(cancelledAt - 1)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    expect(await sweep(cancelledAt)).toEqual({ softDeleted: 3, hardDeleted: 0 });
    // Day 29 of the grace: still there, not served.
    expect(await sweep(cancelledAt + 29 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    expect(await sweep(cancelledAt + 30 * DAY - 1)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    let left = await all(tables);
    expect(of(left, 'acme').filter((i) => !isServed(i)).length).toBe(3);
    expect(of(left, 'acme')).toHaveLength(5);
    // Day 30: deleted, but its rejection record and counter (audit metadata, kept in starter).
    expect(await sweep(cancelledAt + 30 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 3 });
    left = await all(tables);
    expect(of(left, 'acme').map((i) => i.entry?.S?.replace(/#.*/, '')).sort()).toEqual(['count', 'seq']);
    // beta (not cancelled) and gamma (its time unreadable: not taken as a cancellation) are untouched and served.
    for (const customerId of ['beta', 'gamma']) {
      expect(of(left, customerId)).toHaveLength(5);
      expect(of(left, customerId).every(isServed)).toBe(true);
    }
  });

  test('trial, with the cancellations read from the registry: 8 days of grace, then everything of the customer goes, audit metadata too', async () => {
    const tables = await seeded('trial', T0);
    const cancelledAt = T0 + 2 * DAY;
    const reader = await registry({ acme: formatCancelledAt(cancelledAt), beta: undefined });
    const sweep = async (at: number) => sweepRetention(ddb, tables, 'trial', at, (await reader.cancellations()).cancelledAt);
    // Marked at the cancellation, the rejection counter too (no storage time needed: the cancellation marks all).
    expect(await sweep(cancelledAt)).toEqual({ softDeleted: 5, hardDeleted: 0 });
    expect(await sweep(cancelledAt + 8 * DAY - 1)).toEqual({ softDeleted: 0, hardDeleted: 0 });
    expect(await sweep(cancelledAt + 8 * DAY)).toEqual({ softDeleted: 0, hardDeleted: 5 });
    const left = await all(tables);
    expect(of(left, 'acme')).toEqual([]);
    // beta follows the age rules only: served until day 14 after storage.
    expect(of(left, 'beta')).toHaveLength(5);
    expect(of(left, 'beta').every(isServed)).toBe(true);
    expect(RETENTION.trial.cancellationGraceDays).toBe(8);
  });

  test('the TTL of each mode and table', () => {
    expect(expiresAt('byoc', 'usage', T0)).toBeUndefined();
    expect(expiresAt('trial', 'rejections', T0)).toBe((T0 + 22 * DAY) / 1000);
    expect(expiresAt('starter', 'rejections', T0)).toBeUndefined();
    expect(expiresAt('starter', 'learningPool', T0)).toBeUndefined();
    expect(RETENTION.trial.softDeleteDays! + RETENTION.trial.cancellationGraceDays!).toBe(RETENTION.trial.ttlDays);
  });
});

describe('deploymentMode in the templates', () => {
  const ingest = (json: any) => resourcesOf(json, 'AWS::DynamoDB::Table').filter(([id]) => id.startsWith('Ingest'));
  const taskEnv = (json: any) => resourcesOf(json, 'AWS::ECS::TaskDefinition').flatMap(([, r]) => r.Properties.ContainerDefinitions[0].Environment ?? [])
    .find((e: any) => e.Name === 'BYOC_INGEST_DEPLOYMENT_MODE')?.Value;
  const sweepGrant = (json: any) => resourcesOf(json, 'AWS::IAM::Policy').concat(resourcesOf(json, 'AWS::IAM::ManagedPolicy'))
    .flatMap(([, r]) => r.Properties.PolicyDocument.Statement).filter((s: any) => [s.Action].flat().includes('dynamodb:DeleteItem'));

  test('byoc (the default): no TTL, no sweep permission', () => {
    const { json } = synthControl(exampleAppProps());
    expect(ingest(json).filter(([, t]) => t.Properties.TimeToLiveSpecification)).toEqual([]);
    expect(taskEnv(json)).toBe('byoc');
    expect(sweepGrant(json)).toEqual([]);
  });

  test.each(['trial', 'starter'] as const)('%s: TTL on the four customer-keyed tables, the sweep may scan, mark and delete only those', (deploymentMode) => {
    const { json, template } = synthControl({ ...exampleAppProps(), deploymentMode });
    const withTtl = ingest(json).filter(([, t]) => t.Properties.TimeToLiveSpecification);
    expect(withTtl).toHaveLength(4);
    for (const [, t] of withTtl) expect(t.Properties.TimeToLiveSpecification).toEqual({ AttributeName: TTL_ATTRIBUTE, Enabled: true });
    expect(taskEnv(json)).toBe(deploymentMode);
    const grants = sweepGrant(json);
    expect(grants).toHaveLength(1);
    expect([...grants[0].Action].sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:UpdateItem']);
    expect(grants[0].Resource).toHaveLength(4);
    template.hasResourceProperties('AWS::DynamoDB::Table', Match.objectLike({ KeySchema: Match.arrayWith([Match.objectLike({ AttributeName: 'patternHash' })]), TimeToLiveSpecification: Match.absent() }));
  });

  test('an unknown mode fails at synth, in the props and in the configuration file', () => {
    expect(() => synthControl({ ...exampleAppProps(), deploymentMode: 'free' as DeploymentMode })).toThrow(/deploymentMode.*"free" is not a deployment mode.*byoc, trial, starter/s);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-mode-'));
    try {
      const config = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8'));
      const file = path.join(dir, 'c.json');
      for (const f of fs.readdirSync(path.join(projectRoot(), 'config'))) if (f.endsWith('.pem')) fs.copyFileSync(path.join(projectRoot(), 'config', f), path.join(dir, f));
      fs.writeFileSync(file, JSON.stringify({ ...config, deploymentMode: 'Trial' }));
      expect(() => loadControlPlaneConfig(file)).toThrow(/Invalid setting 'deploymentMode': "Trial" is not a deployment mode\. Fix: use one of byoc, trial, starter/);
      fs.writeFileSync(file, JSON.stringify({ ...config, deploymentMode: 'starter' }));
      expect(loadControlPlaneConfig(file).deploymentMode).toBe('starter');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
