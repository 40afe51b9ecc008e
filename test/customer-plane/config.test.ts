import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { customerPlaneStackProps, loadCustomerPlaneConfig } from '../../customer-plane/config';
import { EgressMode } from '../../customer-plane/props';
import { projectRoot } from '../../lib/app';

const CONFIG_DIR = path.join(projectRoot(), 'config');
const example = () => JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'example-customer.json'), 'utf8'));

test('the example configuration loads', () => {
  const props = loadCustomerPlaneConfig(path.join(projectRoot(), 'config', 'example-customer.json'));
  expect(props.customerId).toBe('example');
  expect(props.env).toBeUndefined();
});

test('settings map onto props: account and region, database type, egress, log retention', () => {
  const props = customerPlaneStackProps({
    ...example(), account: '123456789012', region: 'eu-west-1', egress: 'nat', logRetentionDays: 90,
    database: { instanceType: 'db.r7g.large', multiAz: false }, createRdsOsMetricsLogGroup: true,
  }, CONFIG_DIR);
  expect(props.createRdsOsMetricsLogGroup).toBe(true);
  expect(props.env).toEqual({ account: '123456789012', region: 'eu-west-1' });
  expect(props.egress).toBe(EgressMode.NAT);
  expect(props.logRetention).toBe(90);
  expect(props.database?.instanceType?.toString()).toBe('r7g.large');
});

test.each([
  [{ customerID: 'x' }, /'customerID': is not a setting.*customerId/],
  [{ database: { multiAZ: true } }, /'database.multiAZ': is not a setting/],
  [{ account: '1234' }, /'account'.*12-digit/],
  [{ egress: 'open' }, /'egress'.*none or nat/],
  [{ database: { instanceType: 't3.micro' } }, /'database.instanceType'.*db\.t4g\.medium/],
  [{ images: 'latest' }, /'images': is not an object/],
])('a bad setting names itself: %j', (bad, message) => {
  expect(() => customerPlaneStackProps({ ...example(), ...bad }, CONFIG_DIR)).toThrow(message);
});

test('the vendor hub\'s CA comes from a file next to the configuration; a missing one is named', () => {
  const props = customerPlaneStackProps(example(), CONFIG_DIR);
  expect(props.vendorHub.caCertificatePem).toBe(fs.readFileSync(path.join(CONFIG_DIR, 'example-vendor-hub-ca.pem'), 'utf8'));
  expect(() => customerPlaneStackProps({ ...example(), vendorHub: { ...example().vendorHub, caCertificateFile: 'missing.pem' } }, CONFIG_DIR))
    .toThrow(/'vendorHub.caCertificateFile': cannot read .*missing\.pem \(ENOENT\)/);
  expect(() => customerPlaneStackProps({ ...example(), vendorHub: { ...example().vendorHub, caCertificatePem: 'x' } }, CONFIG_DIR))
    .toThrow(/'vendorHub.caCertificateFile': set together with caCertificatePem/);
});

test('an unreadable file names the file', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-')), 'c.json');
  fs.writeFileSync(file, '{ not json');
  expect(() => loadCustomerPlaneConfig(file)).toThrow(file);
});
