/**
 * A configuration error found at synth: names the prop (with its path, e.g. `database.port`),
 * what is wrong with the value given, and how to fix it.
 *
 * Construct props fail as `Invalid prop '<path>': <problem>. Fix: <fix>`; the settings of a JSON
 * configuration file (kind `setting`) as `Invalid setting '<path>': <problem>. Fix: <fix>`.
 */
export class PropError extends Error {
  constructor(
    public readonly prop: string,
    public readonly problem: string,
    public readonly fix: string,
    public readonly kind: 'prop' | 'setting' = 'prop',
  ) {
    super(`Invalid ${kind} '${prop}': ${problem}. Fix: ${fix}`);
    this.name = 'PropError';
  }
}

/** An invalid setting of a JSON configuration file: `Invalid setting '<path>': <problem>. Fix: <fix>`. */
export function settingError(setting: string, problem: string, fix: string): PropError {
  return new PropError(setting, problem, fix, 'setting');
}

/**
 * Runs the entry point of an app that reads a JSON configuration. A `PropError` is a mistake in that
 * configuration, not in the program: it is printed as one line, `Invalid setting '<path>': <problem>. Fix: <fix>`,
 * on stderr with no stack trace, and the process exits 1. Anything else is thrown on as it is.
 */
export function runApp(main: () => void): void {
  try {
    main();
  } catch (e) {
    if (!(e instanceof PropError)) throw e;
    process.stderr.write(`${new PropError(e.prop, e.problem, e.fix, 'setting').message}\n`);
    process.exitCode = 1;
  }
}
