import { Command, Option } from 'commander';
import { settingError } from '../errors';
import { ASSUMPTIONS, Assumptions, costSummary, estimateCost, formatCost, parseAssumption, readAssembly, Scenario } from './estimate';

/** `byoc cost ASSEMBLY`: the monthly cost of a synthesized plane, by component and agent. */
export function registerCostCommand(cli: Command): Command {
  return cli.command('cost')
    .description('estimate the monthly cost of a synthesized plane from its templates (root and nested stacks) and the pinned price table of lib/cost/prices.ts, by component and agent, with the effect of business hours and Fargate Spot; agents\' task counts as the templates scale them (an event agent scaled on its backlog is priced by --busy-hours-per-day)')
    .argument('<assembly>', 'synthesized cloud assembly, e.g. cdk.out/customer-plane (npm run synth)')
    .option('--region <region>', 'region to price in (default: the assembly\'s, else us-east-1)')
    .addOption(new Option('--schedule <schedule>', 'when the agents run: business (business hours, scaled to zero outside) or always').default('always')
      .argParser((v: string) => {
        if (v !== 'business' && v !== 'always') throw settingError('--schedule', `"${v}" is not a schedule`, 'use business or always');
        return v;
      }))
    .option('--spot', 'run the agents on Fargate Spot (leaf, gateway and the rest stay on-demand)')
    .option('--busy-hours-per-day <hours>', `hours of work a day each backlog-scaled agent has (event agents with scaling: they run a task only while work waits, plus their idle minutes after each burst); default ${ASSUMPTIONS.busyHoursPerDay.default}: a team's tickets, changes and merges keep an event agent busy for a few minutes each, some tens a working day`,
      (v: string) => {
        const hours = Number(v);
        if (v.trim() === '' || !Number.isFinite(hours) || hours < 0 || hours > 24) throw settingError('--busy-hours-per-day', `"${v}" is not a number of hours from 0 to 24`, `give e.g. --busy-hours-per-day ${ASSUMPTIONS.busyHoursPerDay.default}`);
        return hours;
      })
    .option('--assume <key=value>', 'change a usage assumption (repeatable; the output lists them with their defaults)', (v: string, prev?: Partial<Assumptions>) => parseAssumption(v, prev))
    .option('--json', 'print the estimate as JSON on stdout (the summary line goes to stderr)')
    .action((dir: string, opts: { region?: string; schedule: Scenario['schedule']; spot?: boolean; busyHoursPerDay?: number; assume?: Partial<Assumptions>; json?: boolean }) => {
      const assumptions = { ...opts.assume, ...(opts.busyHoursPerDay !== undefined ? { busyHoursPerDay: opts.busyHoursPerDay } : {}) };
      const report = estimateCost(readAssembly(dir), { region: opts.region, schedule: opts.schedule, spot: opts.spot ?? false, assumptions });
      if (opts.json) {
        console.log(JSON.stringify(report, (_k, v) => typeof v === 'number' ? Math.round(v * 1e4) / 1e4 : v, 2));
        console.error(costSummary(report));
      } else {
        console.log(formatCost(report));
        console.log(costSummary(report));
      }
    });
}
