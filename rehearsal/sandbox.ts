/**
 * Runs one ECS container definition as a local process that sees what the container would: its own root
 * filesystem (an overlay of this machine's, read-only when the task definition says so), its image's files
 * at their image paths, a fresh scratch volume, its EFS access point at its container path, the plane's
 * DNS names in /etc/hosts, its user, and exactly the environment ECS would give it. Needs root (or a user
 * namespace) and runs inside the rehearsal's own network, mount and PID namespaces, so none of these mounts
 * and none of its ports exist outside it.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RehearsalError } from './template';

/** A container image, as this machine can stand in for it. */
export interface LocalImage {
  /** What the image is (for the report). */
  readonly description: string;
  /** Files the image holds: this machine's file (read-only) at the image path. */
  readonly files: ReadonlyArray<{ readonly source: string; readonly target: string }>;
  /** The image's environment (`ENV`). */
  readonly env: Record<string, string>;
  /** The image's `CMD`, used when the task definition gives no command. */
  readonly cmd?: readonly string[];
  /** Exit codes its program ends with on SIGTERM when it stopped cleanly. @default [0] */
  readonly cleanStopCodes?: readonly number[];
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: LocalImage;
  readonly entryPoint?: readonly string[];
  readonly command?: readonly string[];
  /** Environment and secrets, resolved, as ECS injects them. */
  readonly env: Record<string, string>;
  /** `uid:gid`, as the task definition's `User`. */
  readonly user?: string;
  readonly readonlyRootFilesystem: boolean;
  /** Volumes: this machine's directory at the container path. */
  readonly mounts: ReadonlyArray<{ readonly source: string; readonly target: string; readonly readOnly: boolean }>;
  /** Names the container resolves (Cloud Map, private hosted zones, endpoints) to loopback. */
  readonly hosts: readonly string[];
}

export interface RunningContainer {
  readonly name: string;
  readonly image: LocalImage;
  readonly child: ChildProcess;
  readonly argv: readonly string[];
  /** When it was started (ms since the epoch). */
  readonly startedAt: number;
  /** Everything it wrote to stdout and stderr (its CloudWatch log stream). */
  output(): string;
  /** Resolves with the exit code (or signal name) when it exits. */
  readonly exited: Promise<number | string>;
  running(): boolean;
  /** SIGTERM, then SIGKILL after `timeoutMs` (ECS's stop timeout). */
  stop(timeoutMs: number): Promise<number | string>;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' });

/** Starts the container; `workDir` holds its root's overlay layers and its log. */
export function startContainer(spec: ContainerSpec, workDir: string): RunningContainer {
  const base = path.join(workDir, spec.name);
  const [upper, work, root] = ['upper', 'work', 'root'].map((d) => path.join(base, d));
  for (const d of [upper, work, root]) fs.mkdirSync(d, { recursive: true });
  run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${upper},workdir=${work}`, root]);
  run('mount', ['-t', 'proc', 'proc', path.join(root, 'proc')]);
  run('mount', ['--rbind', '/dev', path.join(root, 'dev')]);
  const bind = (source: string, target: string, readOnly: boolean) => {
    const at = path.join(root, target);
    if (fs.statSync(source).isDirectory()) fs.mkdirSync(at, { recursive: true });
    else if (!fs.existsSync(at)) {
      // A file already there (an image file a mount replaces) is mounted over as it is.
      fs.mkdirSync(path.dirname(at), { recursive: true });
      fs.writeFileSync(at, '');
    }
    run('mount', ['--bind', source, at]);
    if (readOnly) run('mount', ['-o', 'remount,bind,ro', at]);
  };
  for (const f of spec.image.files) bind(f.source, f.target, true);
  for (const m of spec.mounts) bind(m.source, m.target, m.readOnly);
  fs.writeFileSync(path.join(root, 'etc', 'hosts'), ['127.0.0.1 localhost', ...spec.hosts.map((h) => `127.0.0.1 ${h}`)].join('\n') + '\n');
  if (spec.readonlyRootFilesystem) run('mount', ['-o', 'remount,ro', root]);

  const argv = [...(spec.entryPoint ?? []), ...(spec.command ?? (spec.entryPoint ? [] : spec.image.cmd ?? []))];
  if (argv.length === 0) throw new RehearsalError(`${spec.name}: neither the task definition nor the image gives a command`);
  // As the container runtime: HOME is the user's home, `/` for a user the image's /etc/passwd does not name.
  const env = { PATH, HOME: '/', ...spec.image.env, ...spec.env };
  const userspec = spec.user ? ['--userspec', spec.user] : [];
  const child = spawn('chroot', [...userspec, root, ...argv], { env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const append = (d: Buffer) => {
    out += d.toString();
    if (out.length > 4 * 1024 * 1024) out = out.slice(-2 * 1024 * 1024);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    name: spec.name,
    image: spec.image,
    child,
    argv,
    startedAt: Date.now(),
    output: () => out,
    exited,
    running,
    stop: async (timeoutMs) => {
      if (!running()) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
