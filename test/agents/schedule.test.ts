import { parseSchedule, ScheduleError, Scheduler } from '../../agents/runtime/schedule';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('EventBridge cron expressions, UTC', () => {
  test.each([
    ['cron(0/5 * * * ? *)', '2026-11-23T19:03:20Z', ['2026-11-23T19:05:00.000Z', '2026-11-23T19:10:00.000Z']],
    ['cron(0 3 ? * MON *)', '2026-11-23T19:03:20Z', ['2026-11-30T03:00:00.000Z', '2026-12-07T03:00:00.000Z']],
    // EventBridge numbers days 1 (SUN) to 7 (SAT): 2 is Monday.
    ['cron(0 3 ? * 2 *)', '2026-11-23T19:03:20Z', ['2026-11-30T03:00:00.000Z', '2026-12-07T03:00:00.000Z']],
    ['cron(0 9 ? * 2-6 *)', '2026-11-27T10:00:00Z', ['2026-11-30T09:00:00.000Z', '2026-12-01T09:00:00.000Z']],
    ['cron(* * * * ? *)', '2026-11-23T19:03:00Z', ['2026-11-23T19:04:00.000Z', '2026-11-23T19:05:00.000Z']],
    ['cron(15 * * * ? *)', '2026-11-23T19:15:00Z', ['2026-11-23T20:15:00.000Z', '2026-11-23T21:15:00.000Z']],
    ['cron(0 2 * * ? *)', '2026-11-23T19:03:20Z', ['2026-11-24T02:00:00.000Z', '2026-11-25T02:00:00.000Z']],
    // Last Friday of the month (6L), first Monday (2#1), the last day (L), only in the given years.
    ['cron(15 10 ? * 6L 2027)', '2026-11-23T00:00:00Z', ['2027-01-29T10:15:00.000Z', '2027-02-26T10:15:00.000Z']],
    ['cron(0 3 ? * 2#1 *)', '2026-11-23T00:00:00Z', ['2026-12-07T03:00:00.000Z', '2027-01-04T03:00:00.000Z']],
    ['cron(0 12 L * ? 2028-2029)', '2026-11-23T00:00:00Z', ['2028-01-31T12:00:00.000Z', '2028-02-29T12:00:00.000Z']],
  ])('%s after %s', (expression, after, ticks) => {
    const s = parseSchedule(expression);
    const first = s.next(at(after));
    expect([iso(first), iso(s.next(first!))]).toEqual(ticks);
  });

  test('a schedule whose years are over has no next tick', () => {
    expect(parseSchedule('cron(0 12 * * ? 2020)').next(at('2026-01-01T00:00:00Z'))).toBeUndefined();
  });

  test.each([
    ['rate(5 minutes)', /is not cron\(minutes hours day-of-month month day-of-week year\)/],
    ['cron(0 3 * * MON *)', /exactly one of day-of-month and day-of-week must be \?/],
    ['cron(0 3 ? * ? *)', /exactly one of day-of-month and day-of-week must be \?/],
    ['cron(0 3 ? * 8 *)', /day-of-week 8 is not 1 \(SUN\) to 7 \(SAT\)/],
    ['cron(0 3 ? * MON 20x)', /year "20x"/],
    ['cron(61 3 * * ? *)', /cron\(61 3/],
  ])('%s is refused', (expression, message) => {
    expect(() => parseSchedule(expression)).toThrow(ScheduleError);
    expect(() => parseSchedule(expression)).toThrow(message);
  });
});

describe('Scheduler', () => {
  /** A schedule of one tick every `period` ms (the Scheduler takes any Schedule; cron has minute resolution). */
  const every = (period: number) => ({ expression: `every ${period} ms`, next: (after: number) => (Math.floor(after / period) + 1) * period });

  test('fires each tick once and in order; a tick that fails when the next is near is reported, the next ones fire; stop stops', async () => {
    const start = Date.now();
    const fired: number[] = [];
    const errors: string[] = [];
    let failOnce = true;
    const scheduler = new Scheduler(every(100), async (tick) => {
      if (failOnce) { failOnce = false; throw new Error('store unreachable'); }
      fired.push(tick);
    }, (e) => { errors.push(e.message); });
    scheduler.start();
    await new Promise((r) => setTimeout(r, 1000));
    scheduler.stop();
    const count = fired.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(fired.length).toBe(count);
    expect(count).toBeGreaterThan(3);
    expect(errors).toEqual(['store unreachable']);
    expect(fired[0]).toBeGreaterThan(start);
    expect(fired.every((t) => t % 100 === 0)).toBe(true);
    expect(new Set(fired).size).toBe(fired.length);
    expect([...fired].sort((a, b) => a - b)).toEqual(fired);
  });

  test('a tick that fails is tried again while the next tick has not come', async () => {
    const attempts: number[] = [];
    const scheduler = new Scheduler(every(2500), async (tick) => {
      attempts.push(tick);
      if (attempts.length === 1) throw new Error('store unreachable');
    }, () => undefined);
    scheduler.start();
    await new Promise((r) => setTimeout(r, 4000));
    scheduler.stop();
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts[1]).toBe(attempts[0]);
  });
});
