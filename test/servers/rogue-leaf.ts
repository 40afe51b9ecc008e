import * as fs from 'fs';
import * as net from 'net';
import * as tls from 'tls';
import { nkeys } from '@nats-io/nats-core';

/**
 * A leaf node that is not nats-server: speaks the leaf-node protocol itself over TLS with a user's JWT and
 * seed, and ignores the permissions the hub sends it. What an attacker holding a customer's leaf
 * credentials can run; what the hub must hold against on its own.
 */
export interface RogueLeaf {
  /** The hub's INFO after authentication (permissions it told the leaf, its account). */
  info(): Record<string, any> | undefined;
  /** Sends a message into the account the leaf is bound to (`LMSG`), with an optional reply subject. */
  publish(subject: string, payload: string, reply?: string): void;
  /** Declares interest (`LS+`), wildcards allowed. */
  subscribe(subject: string): void;
  /** Messages the hub delivered to it. */
  readonly received: { subject: string; reply?: string; payload: string }[];
  /** `-ERR` lines the hub sent. */
  readonly errors: string[];
  /** The subjects the hub declared interest in (`LS+`). */
  readonly interest: string[];
  closed(): boolean;
  /** Round trip: resolves once the hub answered a PING sent after everything before it. */
  flush(): Promise<void>;
  close(): void;
}

export async function rogueLeaf(o: { port: number; ca: string; jwt: string; seed: string; name?: string }): Promise<RogueLeaf> {
  const raw = net.connect(o.port, '127.0.0.1');
  raw.on('error', () => undefined);
  // nats-server 2.9 sends its INFO in clear on the leaf port, then upgrades to TLS.
  const first = await new Promise<string>((resolve, reject) => {
    raw.once('data', (d) => resolve(d.toString()));
    raw.once('error', reject);
  });
  const nonce: string = JSON.parse(first.slice('INFO '.length)).nonce;
  const sock = tls.connect({ socket: raw, ca: fs.readFileSync(o.ca), servername: 'localhost' });
  await new Promise<void>((resolve, reject) => { sock.once('secureConnect', () => resolve()); sock.once('error', reject); });
  let closed = false;
  sock.on('close', () => { closed = true; });
  sock.on('error', () => undefined);

  const received: RogueLeaf['received'] = [];
  const errors: string[] = [];
  const interest: string[] = [];
  let info: Record<string, any> | undefined;
  let pongs: (() => void)[] = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const line = buf.subarray(0, eol).toString();
      const [op, ...args] = line.split(' ');
      if (op === 'LMSG' || op === 'HMSG') {
        const total = Number(args[args.length - 1]);
        if (buf.length < eol + 2 + total + 2) return; // wait for the whole payload
        const headerBytes = op === 'HMSG' ? Number(args[args.length - 2]) : 0;
        const rest = args.slice(1, op === 'HMSG' ? -2 : -1);
        const reply = rest[0] === '+' ? rest[1] : rest[0] === '|' ? undefined : rest[0];
        received.push({ subject: args[0], reply, payload: buf.subarray(eol + 2 + headerBytes, eol + 2 + total).toString() });
        buf = buf.subarray(eol + 2 + total + 2);
        continue;
      }
      buf = buf.subarray(eol + 2);
      if (op === 'PING') sock.write('PONG\r\n');
      else if (op === 'PONG') { const p = pongs; pongs = []; p.forEach((f) => f()); }
      else if (op === 'INFO') info = JSON.parse(args.join(' '));
      else if (op === '-ERR') errors.push(args.join(' '));
      else if (op === 'LS+') interest.push(args[0]);
    }
  });

  const key = nkeys.fromSeed(new TextEncoder().encode(o.seed));
  const sig = Buffer.from(key.sign(new TextEncoder().encode(nonce))).toString('base64url');
  sock.write(`CONNECT ${JSON.stringify({ jwt: o.jwt, sig, tls_required: true, name: o.name ?? 'rogue', headers: true, hub: false })}\r\n`);

  const leaf: RogueLeaf = {
    info: () => info,
    publish: (subject, payload, reply) => { if (!closed) sock.write(`LMSG ${subject} ${reply ? `${reply} ` : ''}${Buffer.byteLength(payload)}\r\n${payload}\r\n`); },
    subscribe: (subject) => { if (!closed) sock.write(`LS+ ${subject}\r\n`); },
    received, errors, interest,
    closed: () => closed,
    flush: () => new Promise<void>((resolve) => {
      if (closed) return resolve();
      pongs.push(resolve);
      sock.once('close', () => resolve());
      sock.write('PING\r\n');
    }),
    close: () => { sock.destroy(); },
  };
  await leaf.flush();
  return leaf;
}
