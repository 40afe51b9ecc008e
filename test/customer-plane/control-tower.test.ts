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

test('CT.LAMBDA.PR.3: the only Lambdas outside the VPC are the two deploy-time ones (a known gap); s3PrefixListId removes the lookup', () => {
  const outside = (p: typeof plane) => allResources(p.templates).filter((r) => r.type === 'AWS::Lambda::Function')
    .filter((r) => !(r.props.VpcConfig?.SubnetIds?.length > 0 && r.props.VpcConfig?.SecurityGroupIds?.length > 0)).map((r) => r.id);
  expect(outside(plane).sort()).toEqual([expect.stringMatching(/^AWS679f53fac002430cb0da5b7982bd2287/), expect.stringMatching(/^CustomVpcRestrictDefaultSG/)]);
  expect(outside(synthCustomerPlane(exampleProps({ s3PrefixListId: 'pl-6da54004' })))).toEqual([expect.stringMatching(/^CustomVpcRestrictDefaultSG/)]);
});
