import { BOUNDARY_CONTRACT, BoundaryContract, Direction } from '../lib/boundary-contract';
import { INBOX_PREFIX, OUTBOX_PREFIX } from '../lib/nats-config';

/**
 * The agent catalog: every agent the customer plane runs, what it is for, how it is triggered, its size,
 * and the permissions it needs. The customer plane derives each agent's task role, security groups,
 * EFS access point and database user from its entry here and nothing else: an agent can do exactly
 * what its entry declares.
 */

/** How an agent is started. */
export enum AgentTrigger {
  /** Stateless request/response: a caller sends a request on the agent's service subject (`svc.<name>`) and waits for the reply. */
  REQUEST = 'request',
  /** Event-driven: the agent consumes events published by other agents. */
  EVENT = 'event',
  /** Scheduled: the agent's runtime fires on a cron expression (UTC). */
  SCHEDULE = 'schedule',
}

/** Data stores an agent may be given access to. */
export enum DataStore {
  /** PostgreSQL, as its own database user through IAM authentication. */
  POSTGRES = 'postgres',
  /** Redis cache, over TLS with the AUTH token. */
  REDIS = 'redis',
  /** Its own directory on the shared EFS file system, through its own access point. */
  WORKSPACE = 'workspace',
}

/**
 * Secrets the customer holds in Secrets Manager for agents. The customer plane creates each one empty
 * (a generated placeholder) for the customer to fill; an agent can read only those it declares.
 */
export const AGENT_SECRETS = {
  'llm-primary': 'API key of the primary LLM provider',
  'llm-secondary': 'API key of the secondary (failover) LLM provider',
  'scm-token': 'Token for the customer\'s source-control system',
  'ticketing-token': 'Token for the customer\'s issue tracker',
  'chat-webhook': 'Webhook URL of the customer\'s chat channel for notifications',
  'cloud-readonly': 'Credentials of a read-only role in the customer\'s other accounts (cost and inventory reports)',
} as const;

export type AgentSecret = keyof typeof AGENT_SECRETS;

/**
 * NATS subjects an agent uses, relative to the customer's own subject space on its leaf node. The boundary
 * contract's kinds are declared here too: `boundary.outbox.<kind>` in `publish` for an outbound kind the agent
 * hands to the gateway, `boundary.inbox.<kind>` in `subscribe` for an inbound kind it receives. Its leaf
 * permissions and the gateway's list of who may send what are generated from these declarations.
 */
export interface AgentSubjects {
  /** Subjects the agent subscribes to (its work queue, the events it reacts to, the inbound kinds it receives). */
  readonly subscribe: string[];
  /** Subjects the agent publishes on (events, requests to other agents, the outbound kinds it sends). */
  readonly publish: string[];
}

export interface AgentSpec {
  /** Unique name: lower-case letters, digits and single hyphens, 3 to 28 characters, starting with a letter. */
  readonly name: string;
  /** What the agent does, one sentence. */
  readonly purpose: string;
  /**
   * The agent group it is deployed with. Each group is one nested stack; assignments are stable so that
   * adding an agent never moves another one between stacks (which would replace its resources).
   */
  readonly group: string;
  readonly trigger: AgentTrigger;
  /** Cron expression (UTC, six fields as in EventBridge) for `AgentTrigger.SCHEDULE`. */
  readonly schedule?: string;
  /** Fargate CPU units (256, 512, 1024, 2048, 4096). */
  readonly cpu: number;
  /** Memory in MiB, a valid Fargate combination with `cpu`. */
  readonly memoryMiB: number;
  /** Data stores the agent may reach (network and IAM). */
  readonly dataStores: DataStore[];
  /** Secrets the agent may read at point of use. */
  readonly secrets: AgentSecret[];
  /** NATS subjects the agent may use. */
  readonly subjects: AgentSubjects;
  /**
   * Its work tolerates the task being stopped at any moment: a request or event agent whose items are redelivered and
   * taken over when a task dies (the runtime's redelivery and request leases), with no workspace to leave half-written
   * and no side effect outside the plane but LLM calls. Such an agent may run on Fargate Spot (`capacity.spot`).
   * @default false
   */
  readonly interruptible?: boolean;
}

const { POSTGRES, REDIS, WORKSPACE } = DataStore;
const { REQUEST, EVENT, SCHEDULE } = AgentTrigger;

/** Work subject of an agent: requests and jobs addressed to it. */
export function workSubject(agent: string): string {
  return `work.${agent}`;
}

function agent(spec: Omit<AgentSpec, 'subjects'> & { subscribe?: string[]; publish?: string[] }): AgentSpec {
  const { subscribe = [], publish = [], ...rest } = spec;
  return { ...rest, subjects: { subscribe: [workSubject(spec.name), ...subscribe], publish: ['events.workflow.status', ...publish] } };
}

/** The 28 agents of the product. */
export const AGENT_CATALOG: readonly AgentSpec[] = [
  // intake: turn requests into planned work
  agent({ name: 'request-router', group: 'intake', purpose: 'Classifies incoming requests and dispatches each to the agent that owns it.', trigger: REQUEST, cpu: 256, memoryMiB: 512, dataStores: [REDIS], secrets: [], publish: ['work.*'], interruptible: true }),
  agent({ name: 'triage', group: 'intake', purpose: 'Labels and prioritises new tickets from the issue tracker.', trigger: EVENT, cpu: 256, memoryMiB: 512, dataStores: [POSTGRES], secrets: ['llm-primary', 'llm-secondary', 'ticketing-token'], subscribe: ['events.ticket.opened'], publish: ['events.ticket.triaged'] }),
  agent({ name: 'requirements-analyst', group: 'intake', purpose: 'Turns a ticket into structured acceptance criteria.', trigger: REQUEST, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES], secrets: ['llm-primary', 'llm-secondary'], interruptible: true }),
  agent({ name: 'planner', group: 'intake', purpose: 'Breaks accepted work into a plan of agent tasks.', trigger: REQUEST, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES, REDIS], secrets: ['llm-primary', 'llm-secondary'], publish: ['work.*'], interruptible: true }),
  agent({ name: 'estimator', group: 'intake', purpose: 'Estimates effort and cost of a plan from past workflow metrics.', trigger: REQUEST, cpu: 256, memoryMiB: 512, dataStores: [POSTGRES], secrets: [], interruptible: true }),

  // engineering: change code in the customer's repositories
  agent({ name: 'code-generator', group: 'engineering', purpose: 'Writes code for a planned task in the agent\'s workspace checkout.', trigger: REQUEST, cpu: 1024, memoryMiB: 4096, dataStores: [POSTGRES, WORKSPACE], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], publish: ['events.change.proposed'] }),
  agent({ name: 'code-reviewer', group: 'engineering', purpose: 'Reviews proposed changes and comments on defects.', trigger: EVENT, cpu: 1024, memoryMiB: 2048, dataStores: [POSTGRES, WORKSPACE], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], subscribe: ['events.change.proposed'], publish: ['events.change.reviewed'] }),
  agent({ name: 'refactorer', group: 'engineering', purpose: 'Applies behaviour-preserving refactorings requested by the planner.', trigger: REQUEST, cpu: 1024, memoryMiB: 4096, dataStores: [WORKSPACE], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], publish: ['events.change.proposed'] }),
  agent({ name: 'test-writer', group: 'engineering', purpose: 'Writes tests for changed code.', trigger: EVENT, cpu: 1024, memoryMiB: 2048, dataStores: [WORKSPACE], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], subscribe: ['events.change.proposed'], publish: ['events.change.proposed'] }),
  agent({ name: 'doc-writer', group: 'engineering', purpose: 'Updates documentation for merged changes.', trigger: EVENT, cpu: 512, memoryMiB: 1024, dataStores: [WORKSPACE], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], subscribe: ['events.change.merged'], publish: ['events.change.proposed'] }),
  agent({ name: 'migration-author', group: 'engineering', purpose: 'Drafts database schema migrations for the customer\'s services.', trigger: REQUEST, cpu: 512, memoryMiB: 2048, dataStores: [WORKSPACE], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], publish: ['events.change.proposed'] }),

  // quality: check what engineering produced
  agent({ name: 'test-runner', group: 'quality', purpose: 'Runs a repository\'s test suite in the workspace and reports results.', trigger: EVENT, cpu: 2048, memoryMiB: 4096, dataStores: [WORKSPACE, REDIS], secrets: ['scm-token'], subscribe: ['events.change.proposed'], publish: ['events.change.tested'] }),
  agent({ name: 'security-scanner', group: 'quality', purpose: 'Scans proposed changes for vulnerable patterns and leaked credentials.', trigger: EVENT, cpu: 1024, memoryMiB: 2048, dataStores: [WORKSPACE, POSTGRES], secrets: ['scm-token'], subscribe: ['events.change.proposed'], publish: ['events.change.scanned'] }),
  agent({ name: 'dependency-auditor', group: 'quality', purpose: 'Audits dependency manifests for known advisories every night.', trigger: SCHEDULE, schedule: 'cron(0 2 * * ? *)', cpu: 512, memoryMiB: 1024, dataStores: [WORKSPACE, POSTGRES], secrets: ['scm-token', 'ticketing-token'], publish: ['events.ticket.opened'] }),
  agent({ name: 'license-checker', group: 'quality', purpose: 'Checks dependency licences against the customer\'s policy every week.', trigger: SCHEDULE, schedule: 'cron(0 3 ? * MON *)', cpu: 256, memoryMiB: 512, dataStores: [WORKSPACE], secrets: ['scm-token'], publish: ['events.ticket.opened'] }),
  agent({ name: 'performance-profiler', group: 'quality', purpose: 'Profiles benchmarks of changed code paths.', trigger: EVENT, cpu: 2048, memoryMiB: 4096, dataStores: [WORKSPACE], secrets: [], subscribe: ['events.change.tested'], publish: ['events.change.profiled'] }),

  // operations: run what has shipped
  agent({ name: 'incident-responder', group: 'operations', purpose: 'Gathers context for an alert and drafts a first response.', trigger: EVENT, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES, REDIS], secrets: ['llm-primary', 'llm-secondary', 'chat-webhook'], subscribe: ['events.alert.raised'], publish: ['events.incident.updated'] }),
  agent({ name: 'log-analyst', group: 'operations', purpose: 'Answers questions about the customer\'s application logs.', trigger: REQUEST, cpu: 1024, memoryMiB: 2048, dataStores: [REDIS], secrets: ['llm-primary', 'llm-secondary'], interruptible: true }),
  agent({ name: 'deploy-coordinator', group: 'operations', purpose: 'Sequences approved changes into the customer\'s release pipeline.', trigger: EVENT, cpu: 256, memoryMiB: 512, dataStores: [POSTGRES], secrets: ['scm-token', 'chat-webhook'], subscribe: ['events.change.reviewed'], publish: ['events.change.merged'] }),
  agent({ name: 'cost-reporter', group: 'operations', purpose: 'Reports the customer\'s cloud spend trends every morning.', trigger: SCHEDULE, schedule: 'cron(0 6 * * ? *)', cpu: 256, memoryMiB: 512, dataStores: [POSTGRES], secrets: ['cloud-readonly', 'chat-webhook'] }),
  agent({ name: 'release-notes-writer', group: 'operations', purpose: 'Writes release notes from merged changes.', trigger: EVENT, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES], secrets: ['llm-primary', 'llm-secondary', 'scm-token'], subscribe: ['events.change.merged'] }),

  // knowledge: what the agents know about the customer's code
  agent({ name: 'repo-indexer', group: 'knowledge', purpose: 'Indexes repositories into the search tables every hour.', trigger: SCHEDULE, schedule: 'cron(15 * * * ? *)', cpu: 1024, memoryMiB: 4096, dataStores: [POSTGRES, WORKSPACE], secrets: ['scm-token'] }),
  agent({ name: 'knowledge-curator', group: 'knowledge', purpose: 'Keeps the knowledge base consistent as documentation changes.', trigger: EVENT, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES], secrets: ['llm-primary', 'llm-secondary'], subscribe: ['events.change.merged'], interruptible: true }),
  agent({ name: 'qa-assistant', group: 'knowledge', purpose: 'Answers developers\' questions from the indexed code and knowledge base.', trigger: REQUEST, cpu: 512, memoryMiB: 2048, dataStores: [POSTGRES, REDIS], secrets: ['llm-primary', 'llm-secondary'], interruptible: true }),
  agent({ name: 'summarizer', group: 'knowledge', purpose: 'Summarises long threads, tickets and diffs on request.', trigger: REQUEST, cpu: 256, memoryMiB: 1024, dataStores: [REDIS], secrets: ['llm-primary', 'llm-secondary'], interruptible: true }),

  // platform: the product's own bookkeeping
  agent({ name: 'workflow-orchestrator', group: 'platform', purpose: 'Tracks each workflow\'s state and retries failed steps.', trigger: REQUEST, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES, REDIS], secrets: [], subscribe: ['events.workflow.status', 'boundary.inbox.control'], publish: ['work.*', 'boundary.outbox.workflow'] }),
  agent({ name: 'usage-meter', group: 'platform', purpose: 'Aggregates the agents\' step records into the contract\'s metrics, one window a minute (the gateway signs each window), and usage counters for billing every five minutes.', trigger: SCHEDULE, schedule: 'cron(* * * * ? *)', cpu: 256, memoryMiB: 512, dataStores: [POSTGRES], secrets: [], subscribe: ['events.workflow.status'], publish: ['boundary.outbox.usage', 'boundary.outbox.metrics'] }),
  agent({ name: 'pattern-miner', group: 'platform', purpose: 'Derives anonymised workflow fingerprints (shapes, counts, hashes) for shared learning, and takes in the pool\'s learnings.', trigger: EVENT, cpu: 512, memoryMiB: 1024, dataStores: [POSTGRES], secrets: [], subscribe: ['events.workflow.status', 'boundary.inbox.learning'], publish: ['boundary.outbox.fingerprint'] }),
];

const NAME = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$/;
const SUBJECT = /^(?:[a-z0-9-]+|\*)(?:\.(?:[a-z0-9-]+|\*))*$/;
const CRON = /^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$/;
/** The boundary subjects an agent may declare: an outbound kind to publish, an inbound kind to subscribe to. */
const boundaryDeclarations = (contract: BoundaryContract) => ({
  publish: contract.kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR).map((k) => `${OUTBOX_PREFIX}.${k.name}`),
  subscribe: contract.kinds.filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER).map((k) => `${INBOX_PREFIX}.${k.name}`),
});
/** Fargate's CPU units and, for each, the allowed memory sizes in MiB. */
const FARGATE_SIZES: Record<number, number[]> = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
};

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** One problem with a catalog entry: the field (`catalog[3].cpu`), what is wrong, and the fix. */
export interface CatalogProblem {
  readonly field: string;
  readonly problem: string;
  readonly fix: string;
}

/** Every problem in a catalog; empty when it is valid. */
export function catalogProblems(catalog: readonly AgentSpec[], contract: BoundaryContract = BOUNDARY_CONTRACT): CatalogProblem[] {
  const declarations = boundaryDeclarations(contract);
  const problems: CatalogProblem[] = [];
  const seen = new Set<string>();
  if (catalog.length === 0) {
    problems.push({ field: 'catalog', problem: 'no agents', fix: 'list at least one agent' });
  }
  catalog.forEach((a, i) => {
    const at = (f: string) => `catalog[${i}].${f}`;
    if (!NAME.test(a.name)) {
      problems.push({ field: at('name'), problem: `"${a.name}" is not a valid agent name`, fix: 'use 3-28 lower-case letters, digits and single hyphens, starting with a letter' });
    }
    if (seen.has(a.name)) problems.push({ field: at('name'), problem: `"${a.name}" appears twice`, fix: 'give every agent a unique name' });
    seen.add(a.name);
    if (!NAME.test(a.group)) {
      problems.push({ field: at('group'), problem: `"${a.group}" is not a valid group name`, fix: 'use 3-28 lower-case letters, digits and single hyphens' });
    }
    const memories = FARGATE_SIZES[a.cpu];
    if (!memories) {
      problems.push({ field: at('cpu'), problem: `${a.cpu} is not a Fargate CPU size`, fix: `use one of ${Object.keys(FARGATE_SIZES).join(', ')}` });
    } else if (!memories.includes(a.memoryMiB)) {
      problems.push({ field: at('memoryMiB'), problem: `${a.memoryMiB} MiB is not allowed with ${a.cpu} CPU units`, fix: `use one of ${memories.join(', ')}` });
    }
    if (a.trigger === AgentTrigger.SCHEDULE) {
      if (!a.schedule || !CRON.test(a.schedule)) {
        problems.push({ field: at('schedule'), problem: `scheduled agent has schedule "${a.schedule ?? ''}"`, fix: 'give a six-field cron expression such as cron(0 2 * * ? *)' });
      }
    } else if (a.schedule !== undefined) {
      problems.push({ field: at('schedule'), problem: `a ${a.trigger} agent has a schedule`, fix: 'remove the schedule or set trigger to AgentTrigger.SCHEDULE' });
    }
    const stores = Object.values(DataStore) as string[];
    for (const s of a.dataStores) {
      if (!stores.includes(s)) problems.push({ field: at('dataStores'), problem: `unknown data store "${s}"`, fix: `use ${stores.join(', ')}` });
    }
    for (const s of a.secrets) {
      if (!(s in AGENT_SECRETS)) problems.push({ field: at('secrets'), problem: `unknown secret "${s}"`, fix: `use one of ${Object.keys(AGENT_SECRETS).join(', ')}` });
    }
    for (const dir of ['subscribe', 'publish'] as const) {
      for (const s of a.subjects[dir]) {
        if (!SUBJECT.test(s) || s.length > 128) {
          problems.push({ field: at(`subjects.${dir}`), problem: `"${s}" is not a subject`, fix: 'use dot-separated lower-case tokens, `*` for one token, at most 128 characters; `>` is not allowed' });
        } else if (s.startsWith('boundary.') && !declarations[dir].includes(s)) {
          problems.push({ field: at(`subjects.${dir}`), problem: `"${s}" is not a kind of the boundary contract an agent may ${dir === 'publish' ? 'send' : 'receive'}`, fix: `use one of ${declarations[dir].join(', ')}` });
        }
      }
    }
  });
  return problems;
}
