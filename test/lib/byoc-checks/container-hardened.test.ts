import * as ecs from 'aws-cdk-lib/aws-ecs';
import { byocFindings, PINNED } from './fixture';

const RULE = 'ContainerHardened';

test('compliant: read-only root, a non-root user, every capability dropped, not privileged', () => {
  expect(byocFindings((s) => {
    const task = new ecs.FargateTaskDefinition(s, 'Task');
    const linuxParameters = new ecs.LinuxParameters(s, 'Linux');
    linuxParameters.dropCapabilities(ecs.Capability.ALL);
    task.addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED), readonlyRootFilesystem: true, user: '10001:10001', linuxParameters });
  }, RULE)).toEqual([]);
});

test('non-compliant: CDK\'s defaults (writable root, the image\'s user), root by UID or name, added capabilities, privileged', () => {
  expect(byocFindings((s) => {
    new ecs.FargateTaskDefinition(s, 'Defaults').addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED) });
    new ecs.FargateTaskDefinition(s, 'RootUid').addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED), readonlyRootFilesystem: true, user: '0:0' });
    const ec2Task = new ecs.Ec2TaskDefinition(s, 'Privileged');
    const linuxParameters = new ecs.LinuxParameters(s, 'Linux');
    linuxParameters.addCapabilities(ecs.Capability.NET_ADMIN);
    ec2Task.addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED), memoryLimitMiB: 256, readonlyRootFilesystem: true, user: 'root', privileged: true, linuxParameters });
  }, RULE)).toEqual([
    'Byoc-ContainerHardened[AddedCapabilities] @ Fixture/Privileged/Resource',
    'Byoc-ContainerHardened[Privileged] @ Fixture/Privileged/Resource',
    'Byoc-ContainerHardened[ReadonlyRoot] @ Fixture/Defaults/Resource',
    'Byoc-ContainerHardened[RootUser] @ Fixture/Defaults/Resource',
    'Byoc-ContainerHardened[RootUser] @ Fixture/Privileged/Resource',
    'Byoc-ContainerHardened[RootUser] @ Fixture/RootUid/Resource',
  ]);
});

test('non-compliant: an escape-hatch override that relaxes a compliant container is read from the template', () => {
  expect(byocFindings((s) => {
    const task = new ecs.FargateTaskDefinition(s, 'Task');
    task.addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED), readonlyRootFilesystem: true, user: '10001' });
    (task.node.defaultChild as ecs.CfnTaskDefinition).addPropertyOverride('ContainerDefinitions.0.ReadonlyRootFilesystem', false);
  }, RULE)).toEqual(['Byoc-ContainerHardened[ReadonlyRoot] @ Fixture/Task/Resource']);
});
