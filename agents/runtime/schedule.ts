import { CronExpressionParser } from 'cron-parser';

/**
 * EventBridge schedule expressions evaluated in the plane: `cron(minutes hours day-of-month month
 * day-of-week year)`, UTC, with EventBridge's meaning (`?` in one of the two day fields, day-of-week 1-7 =
 * SUN-SAT or names, `L`, `W`, `#`, year lists and ranges). Minute resolution: a tick is a whole minute.
 */
export class ScheduleError extends Error {}

export interface Schedule {
  readonly expression: string;
  /** The first tick strictly after `afterMs` (epoch ms), or undefined when there is none before the year 2200. */
  next(afterMs: number): number | undefined;
}

const CRON = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/;
const YEAR = /^(?:\*|\d{4}(?:-\d{4})?(?:,\d{4}(?:-\d{4})?)*)$/;

/** EventBridge numbers days of the week 1 (SUN) to 7 (SAT); cron-parser 0 (SUN) to 6: every day number shifts by one (not a `/` step, not the `#` occurrence). */
function dayOfWeek(field: string): string {
  return field.replace(/(^|[,-])(\d+)/g, (_, sep: string, n: string) => {
    const d = Number(n);
    if (d < 1 || d > 7) throw new ScheduleError(`day-of-week ${n} is not 1 (SUN) to 7 (SAT)`);
    return `${sep}${d - 1}`;
  });
}

function yearMatcher(field: string): (year: number) => boolean {
  if (!YEAR.test(field)) throw new ScheduleError(`year "${field}" is not *, a year, a range or a list of them`);
  if (field === '*') return () => true;
  const ranges = field.split(',').map((r) => r.split('-').map(Number));
  return (y) => ranges.some(([from, to = from]) => y >= from && y <= to);
}

/** Parses an EventBridge cron expression; throws a ScheduleError naming the problem. */
export function parseSchedule(expression: string): Schedule {
  const m = CRON.exec(expression);
  if (!m) throw new ScheduleError(`"${expression}" is not cron(minutes hours day-of-month month day-of-week year)`);
  const [, minutes, hours, dom, month, dow, year] = m;
  if ((dom === '?') === (dow === '?')) throw new ScheduleError(`"${expression}": exactly one of day-of-month and day-of-week must be ?`);
  const inYear = yearMatcher(year);
  const fields = `0 ${minutes} ${hours} ${dom === '?' ? '*' : dom} ${month} ${dow === '?' ? '*' : dayOfWeek(dow)}`;
  const parse = (currentDate: Date) => {
    try {
      return CronExpressionParser.parse(fields, { tz: 'UTC', currentDate });
    } catch (e) {
      throw new ScheduleError(`"${expression}": ${(e as Error).message}`);
    }
  };
  parse(new Date(0)); // fails now, not at the first tick
  return {
    expression,
    next(afterMs) {
      let from = afterMs;
      for (;;) {
        const cron = parse(new Date(from));
        if (!cron.hasNext()) return undefined;
        const t = cron.next().getTime();
        let y = new Date(t).getUTCFullYear();
        if (inYear(y)) return y < 2200 ? t : undefined;
        // Not a year of the schedule: go on from the start of the next year that is (no minute-by-minute walk).
        while (!inYear(++y)) if (y >= 2200) return undefined;
        from = Date.UTC(y, 0, 1) - 1;
      }
    },
  };
}

/** The longest a timer waits at once (Node's timers hold at most about 24.8 days); past it the next tick is recomputed. */
const MAX_WAIT_MS = 3600000;

/**
 * Fires `fire(tick)` at each tick of a schedule (the tick's epoch ms, a whole minute), from the first tick
 * after `start()`. A tick whose `fire` fails is tried again (a few times, a second apart) while the next tick
 * has not come; ticks missed while the process was down are not replayed (another task fires them).
 */
export class Scheduler {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly schedule: Schedule,
    private readonly fire: (tickMs: number) => Promise<void>,
    private readonly onError: (e: Error, tickMs: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  public start(): void {
    this.stopped = false;
    this.plan(this.now());
  }

  public stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private plan(afterMs: number): void {
    if (this.stopped) return;
    const tick = this.schedule.next(afterMs);
    if (tick === undefined) return;
    const wait = tick - this.now();
    if (wait > MAX_WAIT_MS) {
      this.timer = setTimeout(() => this.plan(afterMs), MAX_WAIT_MS);
      return;
    }
    this.timer = setTimeout(() => void this.run(tick), Math.max(0, wait));
  }

  private async run(tick: number): Promise<void> {
    const next = this.schedule.next(tick);
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.fire(tick);
        break;
      } catch (e) {
        if (attempt >= 5 || (next !== undefined && this.now() + 1000 >= next)) {
          this.onError(e as Error, tick);
          break;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    this.plan(tick);
  }
}
