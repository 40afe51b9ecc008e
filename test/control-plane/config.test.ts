import * as fs from 'fs';
import * as path from 'path';
import { ControlPlaneConfig, controlPlaneStackProps, loadControlPlaneConfig } from '../../control-plane/config';
import { controlPlaneConfigSchema } from '../../control-plane/config-schema';
import { projectRoot } from '../../lib/app';
import { PropError } from '../../lib/errors';

const CONFIG_DIR = path.join(projectRoot(), 'config');
const example = (): any => JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'example-vendor.json'), 'utf8'));
const parse = (config: unknown) => controlPlaneStackProps(config as ControlPlaneConfig, CONFIG_DIR);

/** The example with `edit` applied to a fresh copy. */
function withEdit(edit: (c: any) => void): any {
  const c = example();
  edit(c);
  return c;
}

function errorOf(config: unknown): PropError {
  try {
    parse(config);
  } catch (e) {
    expect(e).toBeInstanceOf(PropError);
    return e as PropError;
  }
  throw new Error('accepted');
}

test('the example configuration still loads, its CA read from the file next to it', () => {
  const props = loadControlPlaneConfig(path.join(CONFIG_DIR, 'example-vendor.json'));
  expect(props.env).toEqual({ account: '111122223333', region: 'eu-west-1' });
  expect(props.hub!.tls.caCertificatePem).toBe(fs.readFileSync(path.join(CONFIG_DIR, 'example-vendor-hub-ca.pem'), 'utf8'));
  expect(props.services!.llmProxy!.providers.map((p) => p.name)).toEqual(['anthropic', 'openai']);
  expect(props.retainData).toBe(true);
});

test('"$schema", for editors, is allowed and not passed on', () => {
  expect(parse({ ...example(), $schema: 'control-plane.schema.json' })).not.toHaveProperty('$schema');
});

// One bad value for each setting of the README's control-plane table: the setting's path and the problem.
test.each<[string, (c: any) => void, string, RegExp]>([
  ['account', (c) => { c.account = 111122223333; }, 'account', /is not a string: 111122223333 is a number\. Fix: give the vendor's 12-digit account ID/],
  ['account form', (c) => { c.account = '1111'; }, 'account', /"1111" is not in the expected form/],
  ['region', (c) => { c.region = 'eu-west-9'; }, 'region', /"eu-west-9" is not an AWS region\. Fix: give an AWS region/],
  ['customerAccounts', (c) => { c.customerAccounts = '444455556666'; }, 'customerAccounts', /is not a list: "444455556666" is a string/],
  ['customerAccounts item', (c) => { c.customerAccounts = [444455556666]; }, 'customerAccounts[0]', /is not a string: 444455556666 is a number/],
  ['retainReleases', (c) => { c.retainReleases = 'true'; }, 'retainReleases', /is not a boolean: "true" is a string\. Fix: write true, without quotes/],
  ['bundleRegistry', (c) => { c.bundleRegistry = 'GOVERNANCE'; }, 'bundleRegistry', /is not an object/],
  ['bundleRegistry.retention.mode', (c) => { c.bundleRegistry = { retention: { mode: 'governance' } }; }, 'bundleRegistry.retention.mode', /"governance" is not an Object Lock mode\. Fix: use GOVERNANCE \(.*\) or COMPLIANCE \(nobody may, until the retention ends\)/],
  ['bundleRegistry.retention.days', (c) => { c.bundleRegistry = { retention: { days: '365' } }; }, 'bundleRegistry.retention.days', /is not a whole number: "365" is a string\. Fix: write 365, without quotes/],
  ['bundleRegistry.retention.mdoe', (c) => { c.bundleRegistry = { retention: { mdoe: 'COMPLIANCE' } }; }, 'bundleRegistry.retention.mdoe', /is not a setting of the control plane\. Fix: remove it or use one of mode, days/],
  ['bundleRegistry.accessLogBucket', (c) => { c.bundleRegistry = { accessLogBucket: ['logs'] }; }, 'bundleRegistry.accessLogBucket', /is not a string: \["logs"\] is a list/],
  ['releaseSigners', (c) => { c.releaseSigners = 'arn:aws:iam::111122223333:role/ci'; }, 'releaseSigners', /is not a list/],
  ['retainData', (c) => { c.retainData = 'false'; }, 'retainData', /is not a boolean: "false" is a string\. Fix: write false, without quotes/],
  ['logRetentionDays', (c) => { c.logRetentionDays = 10; }, 'logRetentionDays', /10 is not a finite CloudWatch Logs retention\. Fix: use one of CloudWatch Logs' retention periods: 1, 3, 5/],
  ['logRetentionDays quoted', (c) => { c.logRetentionDays = '365'; }, 'logRetentionDays', /Fix: write 365, without quotes/],
  ['hub', (c) => { c.hub = true; }, 'hub', /is not an object: true is a boolean/],
  ['hub.image', (c) => { c.hub.image = null; }, 'hub.image', /is not a string: null is a null/],
  ['hub.host', (c) => { delete c.hub.host; }, 'hub.host', /missing\. Fix: give host: The hub's DNS name, as on its certificate/],
  ['hub.nodes', (c) => { c.hub.nodes = '3'; }, 'hub.nodes', /is not a whole number: "3" is a string\. Fix: write 3, without quotes/],
  ['hub.nodes count', (c) => { c.hub.nodes = 4; }, 'hub.nodes', /4 is not one of the allowed values\. Fix: use 3, 5, 7 nodes/],
  ['hub.operatorJwt', (c) => { c.hub.operatorJwt = { jwt: 'eyJ' }; }, 'hub.operatorJwt', /is not a string/],
  ['hub.systemAccountPublicKey', (c) => { c.hub.systemAccountPublicKey = 42; }, 'hub.systemAccountPublicKey', /is not a string/],
  ['hub.systemAccountJwt', (c) => { c.hub.systemAccountJwt = false; }, 'hub.systemAccountJwt', /is not a string/],
  ['hub.tls.certificateSecretArn', (c) => { delete c.hub.tls.certificateSecretArn; }, 'hub.tls.certificateSecretArn', /missing/],
  ['hub.tls.certificateSecretKeyArn', (c) => { c.hub.tls.certificateSecretKeyArn = 1; }, 'hub.tls.certificateSecretKeyArn', /is not a string/],
  ['hub.tls.caCertificatePem', (c) => { c.hub.tls.caCertificatePem = ['-----BEGIN CERTIFICATE-----']; }, 'hub.tls.caCertificatePem', /is not a string/],
  ['hub.tls.caCertificateFile', (c) => { c.hub.tls.caCertificateFile = 7; }, 'hub.tls.caCertificateFile', /is not a string/],
  ['hub.tls.key', (c) => { c.hub.tls.key = 'x'; }, 'hub.tls.key', /is not a setting of the control plane\. Fix: remove it or use one of certificateSecretArn, certificateSecretKeyArn, caCertificatePem, caCertificateFile/],
  ['hub.internetFacing', (c) => { c.hub.internetFacing = 'no'; }, 'hub.internetFacing', /is not a boolean: "no" is a string\. Fix: write true or false, without quotes/],
  ['hub.cpu', (c) => { c.hub.cpu = 1000; }, 'hub.cpu', /1000 is not one of the allowed values\. Fix: use one of 512, 1024, 2048, 4096/],
  ['hub.memoryMiB', (c) => { c.hub.memoryMiB = '2048'; }, 'hub.memoryMiB', /write 2048, without quotes/],
  ['hub.vpcCidr', (c) => { c.hub.vpcCidr = 10; }, 'hub.vpcCidr', /is not a string/],
  ['hub.maxAzs', (c) => { delete c.hub.availabilityZones; c.hub.maxAzs = 7; }, 'hub.maxAzs', /7 is out of range\. Fix: use a whole number from 2 to 6/],
  ['hub.availabilityZones', (c) => { c.hub.availabilityZones = 'eu-west-1a'; }, 'hub.availabilityZones', /is not a list/],
  ['hub.s3PrefixListId', (c) => { c.hub.s3PrefixListId = 1; }, 'hub.s3PrefixListId', /is not a string/],
  ['hub.accessLogBucket', (c) => { c.hub.accessLogBucket = {}; }, 'hub.accessLogBucket', /is not a string: \{\} is an object/],
  ['hub.node', (c) => { c.hub.node = 3; }, 'hub.node', /is not a setting of the control plane/],
  ['services.image', (c) => { delete c.services.image; }, 'services.image', /missing/],
  ['services.ingestRefreshSeconds', (c) => { c.services.ingestRefreshSeconds = 0; }, 'services.ingestRefreshSeconds', /0 is out of range\. Fix: give a whole number of seconds from 1 to 3600/],
  ['services.llmProxy.providers', (c) => { c.services.llmProxy.providers = []; }, 'services.llmProxy.providers', /is empty\. Fix: give the upstream providers in failover order/],
  ['services.llmProxy.providers[].api', (c) => { c.services.llmProxy.providers[1].api = 'gemini'; }, 'services.llmProxy.providers[1].api', /"gemini" is not one of the allowed values\. Fix: use "openai" or "anthropic"/],
  ['services.llmProxy.providers[].baseUrl', (c) => { c.services.llmProxy.providers[0].baseUrl = 'http://api.anthropic.com'; }, 'services.llmProxy.providers[0].baseUrl', /is not in the expected form/],
  ['services.llmProxy.providers[].models', (c) => { c.services.llmProxy.providers[0].models = { default: 4 }; }, 'services.llmProxy.providers[0].models.default', /is not a string/],
  ['services.llmProxy.providers[].key', (c) => { c.services.llmProxy.providers[0].apiKey = 'sk-x'; }, 'services.llmProxy.providers[0].apiKey', /is not a setting of the control plane\. Fix: remove it or use one of name, api, baseUrl, models/],
  ['services.llmProxy.egress', (c) => { c.services.llmProxy.egress = { via: 'internet' }; }, 'services.llmProxy.egress.via', /"internet" is not one of the allowed values\. Fix: use "nat"/],
  ['services.llmProxy.egress.natGateways', (c) => { c.services.llmProxy.egress.natGateways = '1'; }, 'services.llmProxy.egress.natGateways', /write 1, without quotes/],
  ['services.llmProxy.desiredCount', (c) => { c.services.llmProxy.desiredCount = 2.5; }, 'services.llmProxy.desiredCount', /is not a whole number: 2\.5 is a number/],
  ['customerAcounts', (c) => { c.customerAcounts = []; }, 'customerAcounts', /is not a setting of the control plane\. Fix: remove it or use one of account, region, customerAccounts/],
])('%s: a bad value is refused naming the setting', (_name, edit, setting, problem) => {
  const e = errorOf(withEdit(edit));
  expect(e.message).toMatch(new RegExp(`^Invalid setting '${setting.replace(/[.[\]]/g, '\\$&')}': `));
  expect(e.prop).toBe(setting);
  expect(e.message).toMatch(problem);
});

describe('what the schema cannot say, checked after it', () => {
  test('the CA file is read relative to the configuration, and a missing one is named', () => {
    const e = errorOf(withEdit((c) => { c.hub.tls.caCertificateFile = 'missing.pem'; }));
    expect(e.message).toMatch(/^Invalid setting 'hub\.tls\.caCertificateFile': cannot read .*missing\.pem \(ENOENT\)\. Fix: give the path of the vendor's CA certificate/);
  });

  test('the CA given twice is refused', () => {
    const e = errorOf(withEdit((c) => { c.hub.tls.caCertificatePem = '-----BEGIN CERTIFICATE-----'; }));
    expect(e.message).toMatch(/^Invalid setting 'hub\.tls\.caCertificateFile': set together with caCertificatePem/);
  });

  test('an unreadable file is a setting error naming it', () => {
    expect(() => loadControlPlaneConfig(path.join(CONFIG_DIR, 'no-such-vendor.json'))).toThrow(/^Invalid setting 'config': cannot read .*no-such-vendor\.json/);
  });
});

describe('the configuration schema', () => {
  test('config/control-plane.schema.json, for editors, is the schema the loader validates with', () => {
    const published = JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'control-plane.schema.json'), 'utf8'));
    // Out of date? node -p "JSON.stringify(require('./dist/control-plane/config-schema').controlPlaneConfigSchema(), null, 2)" > config/control-plane.schema.json
    expect(published).toEqual(JSON.parse(JSON.stringify(controlPlaneConfigSchema())));
  });

  test('the package ships it next to the customer plane\'s', () => {
    const files: string[] = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')).files;
    expect(files).toContain('config/control-plane.schema.json');
    expect(files.indexOf('config/control-plane.schema.json')).toBe(files.indexOf('config/customer-plane.schema.json') + 1);
  });

  test('the README\'s control-plane settings table has a row for every setting of the schema', () => {
    const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
    const start = readme.indexOf('| `account`, `region` | none (environment-agnostic)');
    const section = readme.slice(start, readme.indexOf('Outputs: `AgentRuntimeRepositoryUri`', start));
    const documented = new Set<string>();
    for (const row of section.split('\n').filter((l) => /^\| `/.test(l))) {
      const names = [...row.split('|')[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      const prefix = names[0].includes('.') ? names[0].slice(0, names[0].lastIndexOf('.') + 1) : '';
      for (const name of names) documented.add(name.includes('.') || !prefix ? name : prefix + name);
    }
    const props = controlPlaneConfigSchema().properties as Record<string, { properties?: Record<string, { properties?: object }> }>;
    const leaves = (at: string, node: { properties?: Record<string, any> }): string[] =>
      Object.entries(node.properties ?? {}).flatMap(([k, v]) => {
        const name = at ? `${at}.${k}` : k;
        const documentedWhole = documented.has(name) || !v.properties;
        return documentedWhole ? [name] : leaves(name, v);
      });
    const settings = leaves('', { properties: props }).filter((k) => k !== '$schema');
    expect(settings.filter((s) => !documented.has(s))).toEqual([]);
  });
});
