import { BOUNDARY_CONTRACT, BoundaryContract, Direction } from '../../lib/boundary-contract';
import { canonicalBytes } from '../../lib/contract-validator';
import { INBOX_PREFIX, OUTBOX_PREFIX } from '../../lib/nats-config';
import { parseStepStatus, STEP_STATUS_SUBJECT } from '../../lib/step-status';
import { TokenBuckets } from '../../customer-plane/boundary-gateway/rate-limit';
import { Agent, AgentContext, WorkItem } from '../runtime/agent';

export const WORKFLOW_ORCHESTRATOR = 'workflow-orchestrator';

/**
 * The workflow-orchestrator's part of the narrow link: each step record an agent publishes becomes one
 * `workflow` message (IDs, timing, agent name, status code: the contract's fields, nothing else), handed to the
 * gateway on `boundary.outbox.workflow-orchestrator.workflow`. It paces itself to the contract's rate limit for
 * the kind (the gateway enforces the same bucket: a message above it would be refused there), so a fan-out
 * waits here instead of being refused. With `shareLearning` off the gateway removes the shape-revealing fields.
 */
export class WorkflowOrchestrator implements Agent {
  public readonly name = WORKFLOW_ORCHESTRATOR;
  public readonly counters = { workflowMessages: 0, controlMessages: 0 };
  private readonly buckets: TokenBuckets;

  constructor(private readonly agentName = WORKFLOW_ORCHESTRATOR, private readonly sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)), contract: BoundaryContract = BOUNDARY_CONTRACT) {
    this.buckets = new TokenBuckets(contract.kinds.filter((k) => k.name === 'workflow' && k.direction === Direction.CUSTOMER_TO_VENDOR));
  }

  public async handle(item: WorkItem, ctx: AgentContext): Promise<void> {
    if (item.subject === STEP_STATUS_SUBJECT) {
      // A malformed record throws: retried, then dead-lettered with this reason.
      const s = parseStepStatus(item.data);
      const message = canonicalBytes({
        workflowId: s.workflowId, stepId: s.stepId, agent: s.agent, status: s.status, statusCode: s.statusCode,
        startedAt: s.startedAt, durationMs: s.durationMs,
      });
      while (!this.buckets.take('out', 'workflow')) await this.sleep(50);
      await ctx.publish(`${OUTBOX_PREFIX}.${this.agentName}.workflow`, new Uint8Array(message));
      this.counters.workflowMessages++;
      return;
    }
    if (item.subject === `${INBOX_PREFIX}.control`) {
      // The vendor's control messages arrive validated by the gateway; acting on them is the product's workflow
      // engine. Recorded (no payload is logged: only the action's name).
      this.counters.controlMessages++;
      const { action } = JSON.parse(new TextDecoder().decode(item.data)) as { action?: unknown };
      ctx.log.info({ action: typeof action === 'string' ? action.slice(0, 32) : 'unknown' }, 'control message received');
    }
  }
}
