import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { byocFindings, PINNED } from './fixture';

const RULE = 'ImageByDigest';
const DIGEST = 'sha256:' + 'cd'.repeat(32);

test('compliant: a registry reference by digest, and an ECR repository\'s image by digest (built with intrinsics, as the planes\' are)', () => {
  expect(byocFindings((s) => {
    new ecs.FargateTaskDefinition(s, 'Registry').addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED) });
    const repository = ecr.Repository.fromRepositoryName(s, 'Repo', 'byoc/nats-server');
    new ecs.FargateTaskDefinition(s, 'Ecr').addContainer('main', { image: ecs.ContainerImage.fromEcrRepository(repository, DIGEST) });
  }, RULE)).toEqual([]);
});

test('non-compliant: a tag, latest, an ECR tag, and a CDK asset image (named by a tag of its build inputs)', () => {
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-checks-image-'));
  try {
    fs.writeFileSync(path.join(context, 'Dockerfile'), 'FROM scratch\n');
    expect(byocFindings((s) => {
      new ecs.FargateTaskDefinition(s, 'Tag').addContainer('main', { image: ecs.ContainerImage.fromRegistry('nats:2.10-alpine') });
      new ecs.FargateTaskDefinition(s, 'Latest').addContainer('main', { image: ecs.ContainerImage.fromRegistry('nats') });
      const repository = ecr.Repository.fromRepositoryName(s, 'Repo', 'byoc/nats-server');
      new ecs.FargateTaskDefinition(s, 'EcrTag').addContainer('main', { image: ecs.ContainerImage.fromEcrRepository(repository, 'release-1.4.0') });
      new ecs.FargateTaskDefinition(s, 'Asset').addContainer('main', { image: ecs.ContainerImage.fromAsset(context) });
      // One pinned container does not excuse another of the same task.
      const mixed = new ecs.FargateTaskDefinition(s, 'Mixed');
      mixed.addContainer('pinned', { image: ecs.ContainerImage.fromRegistry(PINNED) });
      mixed.addContainer('tagged', { image: ecs.ContainerImage.fromRegistry('otel/opentelemetry-collector:0.110.0') });
    }, RULE)).toEqual([
      'Byoc-ImageByDigest @ Fixture/Asset/Resource',
      'Byoc-ImageByDigest @ Fixture/EcrTag/Resource',
      'Byoc-ImageByDigest @ Fixture/Latest/Resource',
      'Byoc-ImageByDigest @ Fixture/Mixed/Resource',
      'Byoc-ImageByDigest @ Fixture/Tag/Resource',
    ]);
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
});
