import { Aws, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { HardenedService } from '../customer-plane/hardened-service';
import { acknowledgeFinding, cfnOf, limitKeyGrantsToAwsServices } from '../lib/compliance';
import { declareEgress, declareRetainedData } from '../lib/byoc-checks';
import { PropError } from '../lib/errors';
import { accountOnlyInterfaceEndpoints, HTTPS_PORT, s3GatewayEndpoint } from '../lib/network';
import { NatsHub } from './hub';
import { LLM_ENV, providerProblems } from './llm-proxy/config';
import { LLM_PROXY_PORT } from './llm-proxy/endpoint';
import { ApiShape } from './llm-proxy/providers';
import { LLM_TABLE_KEY, LLM_TABLE_TTL } from './llm-proxy/store';
import { LLM_TOKEN_ISSUER, llmProxyAudience, llmProxyHost } from './llm-proxy/token';

/** Where the vendor services image (`dist/control-plane/` at `/app/`) holds the proxy's bundle. */
export const LLM_PROXY_ENTRY = '/app/llm-proxy-server.js';
/** The proxy's ports in its task: TLS (behind the listener) and the plain admin port (health checks, metrics). */
export const LLM_PROXY_PORTS = { tls: 8443, admin: 9090 } as const;
/** The port customers reach the proxy on, a listener of the hub's load balancer: behind the same endpoint service. */
export const LLM_PROXY_LISTENER_PORT = LLM_PROXY_PORT;
/** Prefix of the provider API key secrets: `byoc/llm-proxy/providers/<name>`. */
export const LLM_PROVIDER_SECRET_PREFIX = 'byoc/llm-proxy/providers/';

/** One upstream LLM provider, in failover order. Its API key is a secret the construct creates (`providerKeys`). */
export interface LlmProviderProps {
  /** Name in logs, metrics and the secret's name: 1 to 32 lower-case letters, digits and hyphens. */
  readonly name: string;
  /** The provider's API shape. */
  readonly api: ApiShape;
  /** Base URL, `https://...` (e.g. `https://api.openai.com`); the shape's path is appended. */
  readonly baseUrl: string;
  /** The models it serves: the name clients use -> the provider's model name. */
  readonly models: Readonly<Record<string, string>>;
}

/**
 * How the proxy reaches the providers. The hub's VPC has no route out, so egress is an explicit choice.
 *
 * `nat`: the proxy's tasks get subnets of their own (one per hub AZ, carved from the top /22 of the hub's VPC
 * CIDR) whose only route out is a NAT gateway in a public subnet of their own; their security group sends HTTPS
 * (443) to anywhere and nothing else out. The hub's nodes, storage and load balancer stay in the isolated subnets,
 * whose route tables are unchanged. The price: NAT gateways (hourly and per GB), public subnets and an internet
 * gateway in the hub's VPC, and 443 to 0.0.0.0/0 from the proxy tasks (providers publish no stable address
 * ranges). Control Tower and cdk-nag see the public subnets' routes to the internet gateway, acknowledged on
 * those routes only.
 */
export interface LlmProxyEgress {
  readonly via: 'nat';
  /**
   * NAT gateways: one per AZ survives the loss of an AZ; fewer cost less (each subnet then routes through the
   * gateway of AZ index modulo the count).
   * @default - one per AZ of the hub
   */
  readonly natGateways?: number;
}

export interface LlmProxyProps {
  /** The hub whose VPC, cluster, internal load balancer (and so endpoint service) and key the proxy shares. */
  readonly hub: NatsHub;
  /** The hub's DNS name (`hub.host`): the proxy serves `llm.<host>`, which the hub certificate's `*.<host>` covers. */
  readonly host: string;
  /** The vendor services image (`dist/control-plane/` at `/app/`), pinned by digest, ARM64, in the stack's region. */
  readonly image: string;
  /** Complete ARN of the hub's certificate secret (`{"cert", "key"}`, for `host` and `*.<host>`). */
  readonly certificateSecretArn: string;
  /**
   * ARN of the certificate secret's customer-managed KMS key, if it has one.
   * @default - the secret is encrypted with aws/secretsmanager
   */
  readonly certificateSecretKeyArn?: string;
  /** Upstream providers in failover order (at least one). */
  readonly providers: readonly LlmProviderProps[];
  /** How the proxy reaches the providers: required, since it opens a path out of the hub's VPC. */
  readonly egress: LlmProxyEgress;
  /**
   * Tokens' issuer (`iss`).
   * @default LLM_TOKEN_ISSUER
   */
  readonly issuer?: string;
  /**
   * Proxy tasks, spread over the AZs; limits hold across all of them (DynamoDB).
   * @default 2
   */
  readonly desiredCount?: number;
  /** @default 512 */
  readonly cpu?: number;
  /** @default 1024 */
  readonly memoryMiB?: number;
  /** Keep the table, the token key, the provider key secrets and logs on delete. */
  readonly retainData: boolean;
  readonly logRetention: logs.RetentionDays;
}

const ROTATION_RULES = ['AwsSolutions-SMG4', 'HIPAA.Security-SecretsManagerRotationEnabled', 'NIST.800.53.R5-SecretsManagerRotationEnabled'];

/** An IPv4 address as a number, and back. */
const ipNum = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const ipStr = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const range = (cidr: string): [number, number] => {
  const [ip, bits] = cidr.split('/');
  const start = ipNum(ip);
  return [start, start + 2 ** (32 - Number(bits)) - 1];
};

/**
 * The LLM proxy in the vendor's hub (for customers who choose it: `llm: { via: 'vendor-proxy' }` in their plane):
 * ECS Fargate tasks (ARM64, read-only root, non-root, no capabilities) running `control-plane/llm-proxy/`, reached
 * by customers' agents through the hub's PrivateLink endpoint service, on a listener (443) of the hub's internal
 * load balancer.
 *
 * TLS passes through the load balancer to the proxy, which ends it with the hub's certificate (`llm.<host>` is
 * covered by its `*.<host>`): the agents verify it against the vendor CA they already pin for the hub, and the
 * load balancer never holds a key or sees a prompt. (A TLS listener would need an ACM certificate, which chains to
 * public roots the agents would then have to trust for this name, and would decrypt at the load balancer.)
 *
 * Each request carries the customer's token (a JWT signed by `tokenSigningKey`, which never leaves KMS; the
 * proxy reads only its public key). Rate limits and token budgets live in `table`, shared by every task.
 * Provider API keys are secrets the vendor fills (`providerKeys`). The proxy logs who, which model and provider,
 * token counts, status and latency: never a prompt or a completion.
 */
export class LlmProxy extends Construct {
  public readonly service: HardenedService;
  /** Customers, rate windows and budgets. */
  public readonly table: dynamodb.Table;
  /** Signs customers' tokens (ES256); `kms:Sign` for the vendor's onboarding, `kms:GetPublicKey` for the proxy. */
  public readonly tokenSigningKey: kms.Key;
  /** Each provider's API key secret, by provider name (a generated placeholder until the vendor fills it). */
  public readonly providerKeys: Record<string, secretsmanager.Secret> = {};
  public readonly securityGroup: ec2.SecurityGroup;
  /** The proxy's own subnets (routed out through `natGateways` only). */
  public readonly subnets: ec2.PrivateSubnet[] = [];
  public readonly natGateways: ec2.CfnNatGateway[] = [];
  public readonly listener: elbv2.NetworkListener;
  /** What customers' agents use as base URL, followed by `/c/<customer>`. */
  public readonly url: string;
  /** The tokens' audience. */
  public readonly audience: string;
  public readonly issuer: string;

  constructor(scope: Construct, id: string, props: LlmProxyProps) {
    super(scope, id);
    const { hub } = props;
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    this.validate(props);
    // Declared here, where they are chosen, so the kit's own checks (ByocChecks) accept the construct wherever it is used.
    declareEgress(this, 'egress is nat: the proxy reaches the LLM providers through its own internet and NAT gateways.');
    if (props.retainData) declareRetainedData(this, 'retainData: true keeps the proxy\'s limits table, its key, the token signing key and the service\'s logs on cdk destroy.');
    const vpc = hub.network.vpc;
    this.audience = llmProxyAudience(props.host);
    this.url = `https://${llmProxyHost(props.host)}`;
    this.issuer = props.issuer ?? LLM_TOKEN_ISSUER;

    // Network: subnets of the proxy's own, out through NAT only ------------------------------------------
    const azs = vpc.isolatedSubnets.map((s) => s.availabilityZone);
    const cidrs = this.carveCidrs(vpc, azs.length);
    let igwId = vpc.internetGatewayId;
    let attached = vpc.internetConnectivityEstablished;
    if (!igwId) {
      const igw = new ec2.CfnInternetGateway(this, 'InternetGateway', {});
      const attachment = new ec2.CfnVPCGatewayAttachment(this, 'InternetGatewayAttachment', { vpcId: vpc.vpcId, internetGatewayId: igw.ref });
      igwId = igw.ref;
      attached = attachment;
    }
    const natCount = props.egress.natGateways ?? azs.length;
    azs.forEach((availabilityZone, i) => {
      if (i < natCount) {
        const pub = new ec2.PublicSubnet(this, `PublicSubnet${i}`, { vpcId: vpc.vpcId, availabilityZone, cidrBlock: cidrs.public[i], mapPublicIpOnLaunch: false });
        pub.addDefaultInternetRoute(igwId!, attached);
        for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
          acknowledgeFinding(pub.node.findChild('DefaultRoute'), `${pack}-VPCNoUnrestrictedRouteToIGW`,
            'The LLM proxy\'s egress was opted into (egress: nat): this public subnet holds only its NAT gateway; the proxy sits in private subnets and the hub in isolated ones.');
        }
        this.natGateways.push(pub.addNatGateway());
      }
      this.subnets.push(new ec2.PrivateSubnet(this, `Subnet${i}`, { vpcId: vpc.vpcId, availabilityZone, cidrBlock: cidrs.private[i], mapPublicIpOnLaunch: false }));
    });
    this.subnets.forEach((s, i) => s.addDefaultNatRoute(this.natGateways[i % natCount].ref));
    // AZs named in the hub's settings are literal in the template (cfn-lint W3010), as for the hub's own subnets.
    for (const subnet of this.node.findAll().filter((c): c is ec2.Subnet => c instanceof ec2.Subnet)) {
      if (Token.isUnresolved(subnet.availabilityZone)) continue;
      const cfnSubnet = cfnOf(subnet);
      acknowledgeFinding(cfnSubnet, 'CloudFormation-Validate::W3010',
        'The vendor named the hub\'s AZs (hub.availabilityZones) for this account and region, and the LLM proxy\'s subnets take the same ones; the names are deliberate, not a default.');
      cfnSubnet.addMetadata('cfn-lint', { config: { ignore_checks: ['W3010'] } });
    }
    const subnets: ec2.SubnetSelection = { subnets: this.subnets };
    // Image layers and the table stay off the internet: gateway endpoints on the proxy's route tables.
    s3GatewayEndpoint(this, vpc, subnets);

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc, allowAllOutbound: false,
      description: 'LLM proxy tasks: TLS and health checks in from the hub load balancer; out HTTPS only (AWS endpoints, providers through NAT)',
    });
    hub.network.allowEndpointsFrom(this.securityGroup);
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(HTTPS_PORT), 'LLM providers through the NAT gateways (egress: nat), HTTPS only');
    const kmsEndpoint = accountOnlyInterfaceEndpoints(this, { KmsEndpoint: ec2.InterfaceVpcEndpointAwsService.KMS },
      { vpc, subnets: hub.network.subnets, securityGroup: hub.network.endpointSecurityGroup })[0];

    // State: the table, the token key, the provider keys ---------------------------------------------------
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: LLM_TABLE_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: hub.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: LLM_TABLE_TTL,
      deletionProtection: props.retainData,
      removalPolicy,
    });
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) {
      acknowledgeFinding(cfnOf(this.table), `${pack}-DynamoDBInBackupPlan`,
        'Point-in-time recovery (35 days) restores the customers\' limits and token IDs; the rest are rate windows and budget counters that expire by themselves. No prompt or completion is stored.');
    }
    const dynamoEndpoint = new ec2.GatewayVpcEndpoint(this, 'DynamoDbEndpoint', { vpc, service: ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets: [subnets] });
    dynamoEndpoint.addToPolicy(new iam.PolicyStatement({
      sid: 'ThisAccountsPrincipalsOnTheProxyTable',
      principals: [new iam.AnyPrincipal()],
      actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      resources: [this.table.tableArn],
      conditions: { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } },
    }));

    this.tokenSigningKey = new kms.Key(this, 'TokenSigningKey', {
      description: 'Signs customers\' LLM proxy tokens (ES256); the proxy reads its public key only',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy,
    });
    limitKeyGrantsToAwsServices(this.tokenSigningKey);

    for (const p of props.providers) {
      const secret = new secretsmanager.Secret(this, `ProviderKey-${p.name}`, {
        secretName: `${LLM_PROVIDER_SECRET_PREFIX}${p.name}`,
        description: `API key of LLM provider ${p.name} (${p.baseUrl}); a generated placeholder until the vendor stores the key with put-secret-value`,
        encryptionKey: hub.key,
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
        removalPolicy,
      });
      for (const rule of ROTATION_RULES) {
        acknowledgeFinding(cfnOf(secret), rule,
          'The provider issues this API key; the vendor rotates it in the provider\'s console and stores the new one with put-secret-value, which the proxy reads within minutes (no rotation Lambda can create a provider key).');
      }
      this.providerKeys[p.name] = secret;
    }

    // The service -------------------------------------------------------------------------------------------
    this.service = new HardenedService(this, 'Service', {
      name: 'llm-proxy',
      customerId: 'vendor',
      cluster: hub.cluster,
      subnets,
      securityGroups: [this.securityGroup],
      image: props.image,
      imageProp: 'llmProxy.image',
      cpu: props.cpu ?? 512,
      memoryMiB: props.memoryMiB ?? 1024,
      key: hub.key,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      command: ['node', LLM_PROXY_ENTRY],
      environment: {
        [LLM_ENV.port]: String(LLM_PROXY_PORTS.tls),
        [LLM_ENV.adminPort]: String(LLM_PROXY_PORTS.admin),
        [LLM_ENV.host]: llmProxyHost(props.host),
        [LLM_ENV.tlsSecretArn]: props.certificateSecretArn,
        [LLM_ENV.tokenKey]: this.tokenSigningKey.keyArn,
        [LLM_ENV.tokenIssuer]: this.issuer,
        [LLM_ENV.tokenAudience]: this.audience,
        [LLM_ENV.table]: this.table.tableName,
        [LLM_ENV.providers]: Stack.of(this).toJsonString(props.providers.map((p) => ({ ...p, apiKeySecretArn: this.providerKeys[p.name].secretArn }))),
      },
      containerPort: LLM_PROXY_PORTS.tls,
      desiredCount: props.desiredCount ?? 2,
    });
    this.service.taskDefinition.defaultContainer!.addPortMappings({ containerPort: LLM_PROXY_PORTS.admin, name: 'admin' });
    this.service.service.node.addDependency(kmsEndpoint, dynamoEndpoint, ...this.subnets.map((s) => s.internetConnectivityEstablished));

    // The task role: each statement is one thing the proxy does.
    const role = this.service.taskRole;
    // Reads the hub's certificate and key at start, to serve TLS as llm.<host>.
    role.grantActions(['secretsmanager:GetSecretValue'], [props.certificateSecretArn]);
    if (props.certificateSecretKeyArn) {
      // Decrypts that secret, only through Secrets Manager.
      role.grantActions(['kms:Decrypt'], [props.certificateSecretKeyArn], { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } });
    }
    // Reads each provider's API key (and decrypts it with the hub key through Secrets Manager).
    for (const secret of Object.values(this.providerKeys)) role.grantSecretRead(secret, hub.key);
    // Reads the token key's public half at start, to verify customers' tokens; it can never sign.
    role.grantActions(['kms:GetPublicKey'], [this.tokenSigningKey.keyArn]);
    // Reads a customer's record, and counts its requests and tokens, with conditional updates.
    role.grantActions(['dynamodb:GetItem', 'dynamodb:UpdateItem'], [this.table.tableArn]);
    // The table is encrypted with the hub key: its data keys, through DynamoDB only.
    role.grantActions(['kms:Decrypt', 'kms:GenerateDataKey'], [hub.key.keyArn], { StringEquals: { 'kms:ViaService': `dynamodb.${Aws.REGION}.amazonaws.com` } });

    // In: the hub's internal load balancer (and so its endpoint service) on 443, TLS passed through -----------
    const lb = hub.loadBalancer;
    lb.connections.allowTo(this.securityGroup, ec2.Port.tcp(LLM_PROXY_PORTS.tls), 'LLM proxy TLS (passed through from customers\' endpoints)');
    lb.connections.allowTo(this.securityGroup, ec2.Port.tcp(LLM_PROXY_PORTS.admin), 'Health checks of the LLM proxy (/healthz)');
    const targets = new elbv2.NetworkTargetGroup(this, 'Targets', {
      vpc,
      port: LLM_PROXY_PORTS.tls,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.IP,
      healthCheck: {
        protocol: elbv2.Protocol.HTTP, port: String(LLM_PROXY_PORTS.admin), path: '/healthz',
        interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 2,
      },
      // Requests in flight may take a while (long completions); the proxy drains for up to 50 s on SIGTERM.
      deregistrationDelay: Duration.seconds(60),
      targets: [this.service.service.loadBalancerTarget({ containerName: 'main', containerPort: LLM_PROXY_PORTS.tls })],
    });
    this.listener = new elbv2.NetworkListener(this, 'Listener', {
      loadBalancer: lb,
      port: LLM_PROXY_LISTENER_PORT,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [targets],
    });
    for (const rule of ['HIPAA.Security-ELBv2ACMCertificateRequired', 'NIST.800.53.R5-ELBv2ACMCertificateRequired', 'PCI.DSS.321-ELBv2ACMCertificateRequired']) {
      acknowledgeFinding(cfnOf(this.listener), rule,
        'TLS passes through to the LLM proxy, which ends it with the hub certificate from the vendor CA that customers\' agents pin (an ACM certificate chains to public roots); the load balancer never holds a key or sees a prompt.');
    }
  }

  private validate(props: LlmProxyProps): void {
    if (!props.providers || props.providers.length === 0) {
      throw new PropError('llmProxy.providers', 'empty: the proxy would have nowhere to send a request', 'give at least one provider { name, api, baseUrl, models }');
    }
    props.providers.forEach((p, i) => {
      const problems = providerProblems(p, `llmProxy.providers[${i}]`, false);
      if (problems.length > 0) throw new PropError(`llmProxy.providers[${i}]`, problems.join('; '), 'give { name, api: openai | anthropic, baseUrl: https://..., models: { clientName: providerName } }');
    });
    const names = props.providers.map((p) => p.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new PropError('llmProxy.providers', `provider "${dup}" is named twice`, 'give each provider its own name (it names its key\'s secret)');
    if (props.egress?.via !== 'nat') {
      throw new PropError('llmProxy.egress', `${JSON.stringify(props.egress)} is not an egress path`, 'give { via: \'nat\' }: the hub\'s VPC has no route out, and the proxy must reach the providers');
    }
    const azs = props.hub.network.vpc.isolatedSubnets.length;
    const nat = props.egress.natGateways;
    if (nat !== undefined && (!Number.isInteger(nat) || nat < 1 || nat > azs)) {
      throw new PropError('llmProxy.egress.natGateways', `${nat}`, `use 1 to ${azs} (one per AZ of the hub survives an AZ's loss)`);
    }
    const count = props.desiredCount ?? 2;
    if (!Token.isUnresolved(count) && (!Number.isInteger(count) || count < 1 || count > 100)) {
      throw new PropError('llmProxy.desiredCount', `${count}`, 'use 1 to 100 tasks (2 or more, so one AZ\'s loss leaves the proxy up)');
    }
    if (!/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(props.certificateSecretArn ?? '')) {
      throw new PropError('llmProxy.certificateSecretArn', `"${props.certificateSecretArn}" is not a complete secret ARN`, 'give the hub certificate secret\'s complete ARN (with its 6-character suffix), as hub.tls.certificateSecretArn');
    }
  }

  /**
   * CIDRs of the proxy's subnets, from the top /22 of the hub's VPC (the hub's own subnets are allocated from the
   * bottom): a /25 private subnet per AZ, then a /28 public one per AZ.
   */
  private carveCidrs(vpc: ec2.Vpc, azs: number): { private: string[]; public: string[] } {
    const vpcCidr = (vpc.node.defaultChild as ec2.CfnVPC).cidrBlock!;
    const [start, end] = range(vpcCidr);
    const base = end + 1 - 1024;
    const out = {
      private: Array.from({ length: azs }, (_, i) => `${ipStr(base + i * 128)}/25`),
      public: Array.from({ length: azs }, (_, i) => `${ipStr(base + 768 + i * 16)}/28`),
    };
    const taken = [...vpc.isolatedSubnets, ...vpc.publicSubnets, ...vpc.privateSubnets].map((s) => s.ipv4CidrBlock).filter((c) => !Token.isUnresolved(c));
    const clash = taken.find((c) => { const [a, b] = range(c); return a <= end && b >= base; });
    if (base < start || clash) {
      throw new PropError('hub.vpcCidr', `${vpcCidr} leaves no free /22 at its top for the LLM proxy's subnets${clash ? ` (${clash} is there)` : ''}`,
        'use a larger hub VPC CIDR, such as the default /16');
    }
    return out;
  }
}
