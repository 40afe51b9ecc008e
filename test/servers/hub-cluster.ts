import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { HUB_DATA_DIR, HUB_ENV, HUB_PORTS } from '../../control-plane/hub-config';
import { freePort, listening } from './nats';
import { waitFor } from './operator-hub';

/**
 * The control plane's hub nodes exactly as its synthesized template starts them: each ECS service's container
 * command (`sh -c`) with the environment its task definition gives it (the generated configuration, the CA)
 * and what ECS injects from Secrets Manager (certificate, key, route password), on Debian's nats-server.
 * What only a test can change is rewritten, nothing else: the container's paths (into a folder), the nodes'
 * names (to localhost, which the test certificate names like the real one names node-N.<host>) and the ports
 * (the nodes share one loopback).
 */

/** A node as its task definition runs it. */
export interface HubNodeSpec {
  readonly config: string;
  readonly command: string;
}

export interface HubPorts {
  readonly client: number;
  readonly cluster: number;
  readonly leafnode: number;
  readonly monitoring: number;
}

/** What ECS injects from Secrets Manager, and the CA the task definition carries. */
export interface HubSecrets {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly routePassword: string;
}

/** The hub nodes of a synthesized control-plane template (one ECS service each), in template order. */
export function hubNodesOf(template: any): HubNodeSpec[] {
  return Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::ECS::Service').map((service) => {
    const task = template.Resources[service.Properties.TaskDefinition.Ref].Properties.ContainerDefinitions[0];
    const config = task.Environment?.find((e: any) => e.Name === HUB_ENV.config)?.Value;
    return config === undefined ? undefined : { config, command: task.Command[2] };
  }).filter((n): n is HubNodeSpec => n !== undefined);
}

/** A node's command or configuration with `dir`, the nodes' names and `ports` in place of the container's. */
export function rewriteHubNode(text: string, dir: string, host: string, ports: HubPorts, clusterPorts: readonly number[]): string {
  return text
    .replace(/\/tmp\//g, `${dir}/tmp/`)
    .replace(new RegExp(`${HUB_DATA_DIR}/`, 'g'), `${dir}/data/`)
    .replace(new RegExp(`node-(\\d+)\\.${host.replace(/\./g, '\\.')}:${HUB_PORTS.cluster}`, 'g'), (_m, i) => `localhost:${clusterPorts[Number(i)]}`)
    .replace(new RegExp(`^port: ${HUB_PORTS.client}$`, 'm'), `port: ${ports.client}`)
    .replace(new RegExp(`^  port: ${HUB_PORTS.cluster}$`, 'm'), `  port: ${ports.cluster}`)
    .replace(new RegExp(`^  port: ${HUB_PORTS.leafnode}$`, 'm'), `  port: ${ports.leafnode}`)
    .replace(new RegExp(`^http_port: ${HUB_PORTS.monitoring}$`, 'm'), `http_port: ${ports.monitoring}`);
}

/** The node container's environment: its configuration and CA, and what ECS reads from Secrets Manager. */
export function hubNodeEnvironment(config: string, s: HubSecrets): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, [HUB_ENV.config]: config, [HUB_ENV.ca]: s.ca, [HUB_ENV.cert]: s.cert, [HUB_ENV.key]: s.key, [HUB_ENV.routePassword]: s.routePassword };
}

export interface HubCluster {
  readonly ports: readonly HubPorts[];
  /** Everything node `i` has printed. */
  log(i: number): string;
  stop(): Promise<void>;
}

/**
 * Starts every node of `nodes` as its container would and waits for their client ports. `leafPorts` fixes a
 * node's leaf-node port (e.g. the port the customer plane's configuration dials); the rest are free ports.
 */
export async function startHubCluster(o: {
  readonly nodes: readonly HubNodeSpec[];
  readonly host: string;
  readonly secrets: HubSecrets;
  readonly dir: string;
  readonly leafPorts?: Readonly<Record<number, number>>;
}): Promise<HubCluster> {
  const ports: HubPorts[] = [];
  for (let i = 0; i < o.nodes.length; i++) {
    ports.push({ client: await freePort(), cluster: await freePort(), leafnode: o.leafPorts?.[i] ?? await freePort(), monitoring: await freePort() });
  }
  const clusterPorts = ports.map((p) => p.cluster);
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const stop = () => Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  }))).then(() => undefined);
  try {
    for (const [i, node] of o.nodes.entries()) {
      const dir = fs.mkdtempSync(path.join(o.dir, `hub-node-${i}-`));
      const child = spawn('sh', ['-c', rewriteHubNode(node.command, dir, o.host, ports[i], clusterPorts)], {
        env: hubNodeEnvironment(rewriteHubNode(node.config, dir, o.host, ports[i], clusterPorts), o.secrets), stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      logs.push('');
      child.stdout!.on('data', (d) => { logs[i] += d; });
      child.stderr!.on('data', (d) => { logs[i] += d; });
    }
    for (const [i, child] of children.entries()) {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`hub node ${i} exited: ${logs[i].slice(-1500)}`);
        return listening(ports[i].client);
      }, 20000, `hub node ${i} to listen`);
    }
    // JetStream's replicated state (the customers' ingest streams) needs a metadata leader.
    await waitFor(() => logs.some((l) => /JetStream cluster new metadata leader/.test(l)), 30000, 'a JetStream metadata leader');
  } catch (e) {
    await stop();
    throw e;
  }
  return { ports, log: (i) => logs[i], stop };
}
