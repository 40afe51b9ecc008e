import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveInWorkspace, runCommand, WorkspacePathError } from '../../agents/runtime/shell';

const workspaces: string[] = [];
const workspace = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-ws-'));
  workspaces.push(dir);
  fs.mkdirSync(path.join(dir, 'repo'));
  return dir;
};
afterAll(() => { for (const d of workspaces) fs.rmSync(d, { recursive: true, force: true }); });

test('arguments are passed as they are, never through a shell', async () => {
  const ws = workspace();
  const r = await runCommand(ws, 'printf', ['%s|', 'a b', '; touch pwned', '$(id)', '`id`'], { cwd: 'repo' });
  expect(r).toMatchObject({ code: 0, stdout: 'a b|; touch pwned|$(id)|`id`|' });
  expect(fs.existsSync(path.join(ws, 'repo', 'pwned'))).toBe(false);
  expect(() => runCommand(ws, 'ls -la', [])).toThrow(/contains whitespace/);
});

test('commands run inside the workspace; traversal and links out of it are refused', async () => {
  const ws = workspace();
  expect((await runCommand(ws, 'pwd', [], { cwd: 'repo' })).stdout.trim()).toBe(fs.realpathSync(path.join(ws, 'repo')));
  for (const bad of ['..', '../..', 'repo/../../etc', '/etc', '/tmp']) {
    expect(() => resolveInWorkspace(ws, bad)).toThrow(WorkspacePathError);
  }
  fs.symlinkSync('/etc', path.join(ws, 'repo', 'escape'));
  expect(() => resolveInWorkspace(ws, 'repo/escape/passwd')).toThrow(/outside the workspace/);
  expect(() => runCommand(ws, 'cat', ['passwd'], { cwd: 'repo/escape' })).toThrow(/outside the workspace/);
  expect(resolveInWorkspace(ws, 'repo/new-file.txt')).toBe(path.join(fs.realpathSync(ws), 'repo', 'new-file.txt'));
});

test('a command past its timeout is killed', async () => {
  const r = await runCommand(workspace(), 'sleep', ['5'], { timeoutMs: 100 });
  expect(r.signal).toBe('SIGTERM');
  expect(r.code).toBeNull();
});
