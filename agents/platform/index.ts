import type { Migration } from '../runtime/state';
import type { Agent } from '../runtime/agent';
import { Sql, USAGE_METER, USAGE_METER_MIGRATIONS, UsageMeter } from './usage-meter';
import { WORKFLOW_ORCHESTRATOR, WorkflowOrchestrator } from './workflow-orchestrator';

export { UsageMeter, USAGE_METER, USAGE_METER_MIGRATIONS } from './usage-meter';
export { WorkflowOrchestrator, WORKFLOW_ORCHESTRATOR } from './workflow-orchestrator';

/** A platform agent's implementation and the migrations its tables need (applied at start, under the advisory lock). */
export interface PlatformAgent {
  readonly agent: Agent;
  readonly migrations: readonly Migration[];
}

/**
 * The product's own bookkeeping agents, which produce what crosses the narrow link (usage and metrics from the
 * usage-meter, workflow metadata from the workflow-orchestrator). Undefined for any other agent: those run the
 * vendor's agent implementation. `sql` is the agent's database (its tenant-scoped pool); the usage-meter needs it.
 */
export function platformAgent(name: string, sql?: Sql): PlatformAgent | undefined {
  switch (name) {
    case USAGE_METER:
      if (!sql) throw new Error('the usage-meter needs its PostgreSQL database (PGHOST and the rest): it stores the step records it aggregates');
      return { agent: new UsageMeter(sql), migrations: USAGE_METER_MIGRATIONS };
    case WORKFLOW_ORCHESTRATOR:
      return { agent: new WorkflowOrchestrator(), migrations: [] };
    default:
      return undefined;
  }
}
