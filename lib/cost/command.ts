import { Command, Option } from 'commander';
import { settingError } from '../errors';
import { Assumptions, costSummary, estimateCost, formatCost, parseAssumption, readAssembly, Scenario } from './estimate';

/** `byoc cost ASSEMBLY`: the monthly cost of a synthesized plane, by component and agent. */
export function registerCostCommand(cli: Command): Command {
  return cli.command('cost')
    .description('estimate the monthly cost of a synthesized plane from its templates (root and nested stacks) and the pinned price table of lib/cost/prices.ts, by component and agent, with the effect of business hours and Fargate Spot')
    .argument('<assembly>', 'synthesized cloud assembly, e.g. cdk.out/customer-plane (npm run synth)')
    .option('--region <region>', 'region to price in (default: the assembly\'s, else us-east-1)')
    .addOption(new Option('--schedule <schedule>', 'when the agents run: business (business hours, scaled to zero outside) or always').default('always')
      .argParser((v: string) => {
        if (v !== 'business' && v !== 'always') throw settingError('--schedule', `"${v}" is not a schedule`, 'use business or always');
        return v;
      }))
    .option('--spot', 'run the agents on Fargate Spot (leaf, gateway and the rest stay on-demand)')
    .option('--assume <key=value>', 'change a usage assumption (repeatable; the output lists them with their defaults)', (v: string, prev?: Partial<Assumptions>) => parseAssumption(v, prev))
    .option('--json', 'print the estimate as JSON on stdout (the summary line goes to stderr)')
    .action((dir: string, opts: { region?: string; schedule: Scenario['schedule']; spot?: boolean; assume?: Partial<Assumptions>; json?: boolean }) => {
      const report = estimateCost(readAssembly(dir), { region: opts.region, schedule: opts.schedule, spot: opts.spot ?? false, assumptions: opts.assume });
      if (opts.json) {
        console.log(JSON.stringify(report, (_k, v) => typeof v === 'number' ? Math.round(v * 1e4) / 1e4 : v, 2));
        console.error(costSummary(report));
      } else {
        console.log(formatCost(report));
        console.log(costSummary(report));
      }
    });
}
