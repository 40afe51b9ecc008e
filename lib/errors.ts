/**
 * A configuration error found at synth: names the prop (with its path, e.g. `database.port`),
 * what is wrong with the value given, and how to fix it.
 */
export class PropError extends Error {
  constructor(public readonly prop: string, problem: string, fix: string) {
    super(`Invalid prop '${prop}': ${problem}. Fix: ${fix}`);
    this.name = 'PropError';
  }
}
