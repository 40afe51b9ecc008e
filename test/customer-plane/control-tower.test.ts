import { acknowledgementsOf, controlTowerRules } from '../../lib/compliance';
import { EgressMode } from '../../customer-plane/props';
import { CustomerPlaneStackProps } from '../../customer-plane/stack';
import { allResources, exampleProps, synthCustomerPlane, SynthesizedPlane } from '../synth';

/**
 * What the Control Tower proactive controls require of the plane, stated as template facts. The plugin checks
 * every synth (`test/customer-plane/compliance.test.ts` proves no control is acknowledged in the default
 * plane); these say what the fixes are, so a reviewer need not run cfn-guard to know.
 */
let plane: SynthesizedPlane;
beforeAll(() => {
  plane = synthCustomerPlane();
});

test('CT.KMS.PR.3: only AWS services may create grants on any key of the plane', () => {
  const keys = allResources(plane.templates).filter((r) => r.type === 'AWS::KMS::Key');
  expect(keys.map((k) => k.id)).toContain('PlaneKey20AD7535');
  for (const key of keys) {
    expect(key.props.KeyPolicy.Statement).toContainEqual({
      Sid: 'GrantsOnlyForAwsServices',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'kms:CreateGrant',
      Resource: '*',
      Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
    });
  }
});

test('CT.ECS.PR.7: every container of every task, root and nested stacks, has a hard memory limit (the task\'s memory)', () => {
  const tasks = allResources(plane.templates).filter((r) => r.type === 'AWS::ECS::TaskDefinition');
  expect(tasks.length).toBe(plane.stack.plane.settings.catalog.length + 3);
  for (const task of tasks) {
    for (const container of task.props.ContainerDefinitions) expect({ task: task.id, memory: container.Memory }).toEqual({ task: task.id, memory: Number(task.props.Memory) });
  }
});

describe('CT.LAMBDA.PR.3: every Lambda function of the plane runs in a customer VPC, none acknowledged', () => {
  const inVpc = (p: SynthesizedPlane) => allResources(p.templates).filter((r) => r.type === 'AWS::Lambda::Function')
    .map((r) => ({ id: r.id, file: r.file, subnets: r.props.VpcConfig?.SubnetIds?.length ?? 0, groups: r.props.VpcConfig?.SecurityGroupIds?.length ?? 0 }));
  const existingVpc = {
    vpcId: 'vpc-0123456789abcdef0', vpcCidrBlock: '10.20.0.0/16', availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'], privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2'],
  };

  test.each([
    ['default (S3 prefix list looked up)', {}],
    ['NAT egress', { egress: EgressMode.NAT }],
    ['existing VPC with s3PrefixListId', { existingVpc, s3PrefixListId: 'pl-6da54004' }],
  ] as [string, Partial<CustomerPlaneStackProps>][])('%s: every AWS::Lambda::Function, root and nested templates, has subnets and security groups', (_name, overrides) => {
    const p = Object.keys(overrides).length === 0 ? plane : synthCustomerPlane(exampleProps(overrides));
    const functions = inVpc(p);
    // The deploy-time function is the only one: no CDK provider framework, AwsCustomResource or restrictDefaultSecurityGroup Lambda.
    expect(functions).toEqual([{ id: expect.stringMatching(/^PlaneNetworkDeployTimeFunction/), file: 'ByocCustomerPlane.template.json', subnets: 2, groups: expect.any(Number) }]);
    expect(functions[0].groups).toBeGreaterThanOrEqual(1);
    expect(Object.keys(p.templates).length).toBeGreaterThan(1); // nested templates were read too
  });

  test('no CT.LAMBDA.PR.3 acknowledgement remains, in code or in any template', () => {
    const guardRule = controlTowerRules().find((r) => r.control === 'CT.LAMBDA.PR.3')!.rule;
    expect(acknowledgementsOf(plane.app).filter((a) => a.finding.includes(guardRule) || a.finding.includes('LambdaInsideVPC'))).toEqual([]);
    const text = JSON.stringify(plane.templates);
    expect(text).not.toContain('CT.LAMBDA.PR.3');
    expect(text).not.toContain(guardRule);
    expect(text).not.toContain('LambdaInsideVPC');
  });
});
