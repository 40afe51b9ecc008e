import * as http from 'http';
import { AddressInfo } from 'net';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ApiShape, API_PATHS } from '../../control-plane/llm-proxy/providers';
import { createLlmTable } from '../../control-plane/llm-proxy/store';
import { MotoServer, startMoto } from '../servers/moto';

/**
 * What the LLM proxy tests share: moto (KMS for the token key, DynamoDB for the store, Secrets Manager for the
 * providers' keys and the TLS certificate) and fake upstream providers, real HTTP servers on loopback that speak
 * one provider API shape each. There is no internet here; these are the providers.
 */

export type ProviderMode =
  /** Answer with a completion. */
  | 'ok'
  /** HTTP 503 whose body quotes the prompt (as some providers' errors do). */
  | 'fail'
  /** HTTP 400 whose body quotes the prompt: the request's own fault. */
  | 'reject'
  /** Never answer. */
  | 'hang';

export interface FakeProvider {
  readonly name: string;
  readonly api: ApiShape;
  readonly apiKey: string;
  readonly baseUrl: string;
  /** Every request received: its headers and parsed body. */
  readonly requests: { headers: http.IncomingHttpHeaders; body: any }[];
  mode: ProviderMode;
  /** The completion text it answers with. */
  completion: string;
  usage: { input: number; output: number };
  /** When set, answers wait for it. */
  gate?: Promise<void>;
  stop(): Promise<void>;
}

const firstUserText = (body: any) => {
  const m = body?.messages?.find((x: any) => x.role === 'user');
  return typeof m?.content === 'string' ? m.content : JSON.stringify(m?.content ?? '');
};

export async function startFakeProvider(name: string, api: ApiShape, apiKey: string): Promise<FakeProvider> {
  const hanging = new Set<http.ServerResponse>();
  const provider: FakeProvider = {
    name, api, apiKey, baseUrl: '', requests: [], mode: 'ok', completion: `completion from ${name}`, usage: { input: 11, output: 7 },
    stop: async () => {
      for (const r of hanging) r.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
      provider.requests.push({ headers: req.headers, body });
      const key = api === 'openai' ? String(req.headers.authorization ?? '').replace(/^Bearer /, '') : req.headers['x-api-key'];
      if (req.url !== API_PATHS[api] || req.method !== 'POST') { res.writeHead(404).end(); return; }
      if (key !== apiKey) { res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"bad key"}}'); return; }
      if (provider.gate) await provider.gate;
      const send = (status: number, out: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
      switch (provider.mode) {
        case 'hang': hanging.add(res); return;
        case 'fail': send(503, { error: { message: `overloaded while reading: ${firstUserText(body)}` } }); return;
        case 'reject': send(400, { error: { type: 'invalid_request_error', message: `cannot process: ${firstUserText(body)}` } }); return;
        default:
      }
      if (api === 'openai') {
        send(200, {
          id: 'chatcmpl-upstream', object: 'chat.completion', model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: provider.completion }, finish_reason: 'stop' }],
          usage: { prompt_tokens: provider.usage.input, completion_tokens: provider.usage.output, total_tokens: provider.usage.input + provider.usage.output },
        });
      } else {
        send(200, {
          id: 'msg_upstream', type: 'message', role: 'assistant', model: body.model, content: [{ type: 'text', text: provider.completion }],
          stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: provider.usage.input, output_tokens: provider.usage.output },
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (provider as { baseUrl: string }).baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return provider;
}

export interface LlmBackends {
  readonly moto: MotoServer;
  readonly kms: KMSClient;
  readonly dynamodb: DynamoDBClient;
  readonly secrets: SecretsManagerClient;
  /** ARN of the token signing key (ECC_NIST_P256, SIGN_VERIFY). */
  readonly tokenKeyArn: string;
  readonly table: string;
  /** Creates a secret; returns its ARN. */
  secret(name: string, value: string): Promise<string>;
  /** Another signing key of the same kind (a key the proxy does not trust). */
  otherKey(): Promise<string>;
  /** Every item of the table, as JSON text. */
  tableDump(): Promise<string>;
  stop(): Promise<void>;
}

export async function startLlmBackends(): Promise<LlmBackends> {
  // One request at a time: the limit tests measure the proxy's conditional updates, not moto's races.
  const moto = await startMoto({ serial: true });
  const config = { endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const kms = new KMSClient(config);
  const dynamodb = new DynamoDBClient(config);
  const secrets = new SecretsManagerClient(config);
  const newKey = async () => (await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.Arn!;
  const table = 'byoc-llm-proxy';
  await createLlmTable(dynamodb, table);
  return {
    moto, kms, dynamodb, secrets, table,
    tokenKeyArn: await newKey(),
    secret: async (name, value) => (await secrets.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!,
    otherKey: newKey,
    tableDump: async () => JSON.stringify((await dynamodb.send(new ScanCommand({ TableName: table }))).Items ?? []),
    stop: async () => {
      kms.destroy();
      dynamodb.destroy();
      secrets.destroy();
      await moto.stop();
    },
  };
}
