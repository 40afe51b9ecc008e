import { BOUNDARY_CONTRACT, BoundaryContract } from '../../lib/boundary-contract';
import type { Migration, TenantPool } from '../runtime/state';
import type { Agent } from '../runtime/agent';
import { METER_TENANT, USAGE_METER, USAGE_METER_MIGRATIONS, UsageMeter } from './usage-meter';
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
 * vendor's agent implementation. The usage-meter needs its database (`postgres`, opened after the migrations are known:
 * hence a function). Both build what they send from `contract`: the plane's, from the runtime's environment.
 */
export function platformAgent(name: string, postgres: () => TenantPool | undefined, contract: BoundaryContract = BOUNDARY_CONTRACT): PlatformAgent | undefined {
  switch (name) {
    case USAGE_METER:
      return {
        agent: new UsageMeter((text, values) => {
          const pool = postgres();
          if (!pool) throw new Error('the usage-meter needs its PostgreSQL database (PGHOST and the rest): it stores the step records it aggregates');
          return pool.query(METER_TENANT, text, values);
        }, USAGE_METER, contract),
        migrations: USAGE_METER_MIGRATIONS,
      };
    case WORKFLOW_ORCHESTRATOR:
      return { agent: new WorkflowOrchestrator(WORKFLOW_ORCHESTRATOR, undefined, contract), migrations: [] };
    default:
      return undefined;
  }
}
