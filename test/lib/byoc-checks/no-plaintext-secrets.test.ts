import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { byocFindings, PINNED } from './fixture';

const RULE = 'NoPlaintextSecretEnv';

test('compliant: secrets from Secrets Manager, references by ARN, and configurations that name variables', () => {
  expect(byocFindings((s) => {
    const secret = new secretsmanager.Secret(s, 'Secret');
    const key = new kms.Key(s, 'Key');
    new ecs.FargateTaskDefinition(s, 'Task').addContainer('main', {
      image: ecs.ContainerImage.fromRegistry(PINNED),
      secrets: { DB_PASSWORD: ecs.Secret.fromSecretsManager(secret) },
      environment: {
        DB_SECRET_ARN: secret.secretArn,
        BYOC_AUDIT_KEY: key.keyArn,
        BYOC_LLM_TOKEN_AUDIENCE: 'https://llm.example.com',
        BYOC_LLM_TLS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:byoc/hub/tls-Ab12Cd',
        NATS_CONFIG: 'authorization { users: [ { user: "agent-a", password: $BYOC_AGENT_A_PASSWORD } ] }',
        CA_PEM: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
      },
    });
  }, RULE)).toEqual([]);
});

test('non-compliant: one finding per variable, by a secret\'s name or a secret\'s look', () => {
  expect(byocFindings((s) => {
    new ecs.FargateTaskDefinition(s, 'Task').addContainer('main', {
      image: ecs.ContainerImage.fromRegistry(PINNED),
      environment: {
        DB_PASSWORD: 'correct-horse-battery-staple',
        scmToken: 'abc123',
        OTHER: 'AKIAIOSFODNN7EXAMPLE',
        SIGNING: '-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----',
        NATS_CONFIG: 'authorization { users: [ { user: "agent-a", password: "hunter2" } ] }',
        LEAF_CREDS_SEED: 'SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4',
        UPSTREAM: 'sk-ant-api03-0123456789abcdefghijklmnop',
      },
    });
  }, RULE)).toEqual([
    'Byoc-NoPlaintextSecretEnv[DB_PASSWORD] @ Fixture/Task/Resource',
    'Byoc-NoPlaintextSecretEnv[LEAF_CREDS_SEED] @ Fixture/Task/Resource',
    'Byoc-NoPlaintextSecretEnv[NATS_CONFIG] @ Fixture/Task/Resource',
    'Byoc-NoPlaintextSecretEnv[OTHER] @ Fixture/Task/Resource',
    'Byoc-NoPlaintextSecretEnv[SIGNING] @ Fixture/Task/Resource',
    'Byoc-NoPlaintextSecretEnv[UPSTREAM] @ Fixture/Task/Resource',
    'Byoc-NoPlaintextSecretEnv[scmToken] @ Fixture/Task/Resource',
  ]);
});
