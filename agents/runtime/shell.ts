import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export class WorkspacePathError extends Error {}

/**
 * Resolves a path inside the agent's workspace, following symbolic links: a path that escapes it (`..`,
 * an absolute path elsewhere, a link pointing outside) is refused.
 */
export function resolveInWorkspace(workspace: string, relative: string): string {
  const root = fs.realpathSync(workspace);
  const target = path.resolve(root, relative);
  // Follow links for the part of the path that exists; the rest cannot be a link yet.
  let probe = target;
  while (!fs.existsSync(probe) && probe !== path.dirname(probe)) probe = path.dirname(probe);
  const real = path.join(fs.realpathSync(probe), path.relative(probe, target));
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new WorkspacePathError(`path "${relative}" is outside the workspace`);
  }
  return real;
}

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a program with an argument array, never through a shell (no expansion, no injection), in a
 * directory inside the workspace, with a timeout and a bounded output.
 */
export function runCommand(workspace: string, program: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CommandResult> {
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw new TypeError('arguments must be an array of strings');
  if (/\s/.test(program)) throw new TypeError(`program "${program}" contains whitespace: pass the program and its arguments separately`);
  const cwd = resolveInWorkspace(workspace, options.cwd ?? '.');
  return new Promise((resolve) => {
    execFile(program, args as string[], { cwd, shell: false, timeout: options.timeoutMs ?? 300000, maxBuffer: 16 * 1024 * 1024, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, ...options.env } },
      (error, stdout, stderr) => {
        const e = error as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout: String(stdout), stderr: String(stderr) });
      });
  });
}
