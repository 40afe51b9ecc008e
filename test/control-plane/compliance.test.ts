import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CONTROL_PLANE_STACK } from '../../bin/control-plane';
import { ControlPlaneStack, ControlPlaneStackProps } from '../../control-plane/stack';
import { acknowledgementsOf, CONTROL_TOWER_PLUGIN } from '../../lib/compliance';
import { exampleServices, exampleVendorProps, findingsWithoutAcknowledgements, synthControl } from './synth';


function covered(finding: string, acks: { path: string; finding: string }[]): boolean {
  const [rule, at] = finding.split(' @ ');
  return acks.some((a) => a.finding === rule && (at === a.path || at.startsWith(`${a.path}/`)));
}

const LOGGING = 'ControlTower::elbv2_logging_enabled_check';
/** The bundle registry's own log bucket is SSE-S3, the only encryption S3 delivers server access logs to. */
const S3_KMS = 'ControlTower::s3_bucket_default_encryption_kms_check';
/**
 * Each variant with the Control Tower controls it acknowledges: every one is the consequence of a setting the
 * operator can change (hub.accessLogBucket, bundleRegistry.accessLogBucket, retainData, internetFacing). No Lambda control: the control plane's
 * only function, the deploy-time function, runs in the hub's VPC (test/control-plane/control-plane.test.ts).
 */
const variants: [string, Partial<ControlPlaneStackProps>, string[]][] = [
  ['example', {}, [S3_KMS, LOGGING]],
  ['the example app: hub, ingest, learning pool, LLM proxy', { services: exampleServices() }, [S3_KMS, LOGGING]],
  ['vendor services, retainData off', { services: exampleServices(), retainData: false, retainReleases: false }, [S3_KMS, LOGGING, 'ControlTower::elbv2_deletion_protection_enabled_check']],
  ['prefix list and access log buckets given', {
    hub: { ...exampleVendorProps().hub!, s3PrefixListId: 'pl-6da54004', accessLogBucket: 'vendor-log-archive' },
    bundleRegistry: { accessLogBucket: 'vendor-log-archive' },
  }, []],
  ['retainData off', { retainData: false, retainReleases: false }, [S3_KMS, LOGGING, 'ControlTower::elbv2_deletion_protection_enabled_check']],
  ['internet-facing', { hub: { ...exampleVendorProps().hub!, internetFacing: true } },
    [S3_KMS, LOGGING, 'ControlTower::vpc_sg_open_only_to_authorized_ports_check', LOGGING]],
  ['environment-agnostic, 5 nodes, no hub AZ names', { env: undefined, hub: { ...exampleVendorProps().hub!, availabilityZones: undefined, nodes: 5 } }, [S3_KMS, LOGGING]],
  ['no hub', { hub: undefined }, [S3_KMS]],
  ['compliance-mode registry, release signers named', {
    hub: undefined, bundleRegistry: { retention: { mode: 'COMPLIANCE', days: 90 } }, releaseSigners: ['arn:aws:iam::111122223333:role/release-pipeline'],
  }, [S3_KMS]],
];

describe.each(variants)('control plane (%s)', (_name, overrides, controls) => {
  const props = () => exampleVendorProps(overrides);

  test('every acknowledgement hides a finding that really occurs there, every finding is acknowledged, none on a stack', () => {
    const { findings, app } = findingsWithoutAcknowledgements((a) => new ControlPlaneStack(a, CONTROL_PLANE_STACK, props()));
    const acks = acknowledgementsOf(app);
    expect(acks.filter((a) => !findings.some((f) => covered(f, [a])))).toEqual([]);
    expect(findings.filter((f) => !covered(f, acks))).toEqual([]);
    expect(acks.filter((a) => a.finding.startsWith(`${CONTROL_TOWER_PLUGIN}::`)).map((a) => a.finding)).toEqual(controls);
    for (const a of acks) {
      expect(a.path.split('/').length).toBeGreaterThan(1);
      expect(a.reason.length).toBeGreaterThanOrEqual(40);
    }
  });

  test('cfn-lint passes (W3005 only: the DependsOn lambda.Function adds on its role, which its GetAtt already implies)', () => {
    const { outdir } = synthControl(props());
    const files = fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json')).map((f) => path.join(outdir, f));
    const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (run.error) throw new Error(`cfn-lint could not run (${run.error.message}): install it with 'pip install cfn-lint'`);
    const findings = JSON.parse(run.stdout || '[]') as { Rule: { Id: string }; Level: string; Message: string }[];
    expect(findings.filter((f) => f.Level === 'Error' || f.Rule.Id !== 'W3005').map((f) => `${f.Rule.Id}: ${f.Message}`)).toEqual([]);
  });
});
