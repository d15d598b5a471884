/**
 * Real traffic between the simulated node's namespaces, through
 * scripts/traffic-tool.mjs run with this Node binary inside a pod's netns.
 * Servers are tracked by the node and stopped on teardown.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnInNs } from './netns.js';
import type { SimNode } from './simnode.js';

// src/sim/ and dist/sim/ are both two levels below the package root.
const TOOL = fileURLToPath(new URL('../../scripts/traffic-tool.mjs', import.meta.url));

export interface Place {
  readonly netns: string;
}

function lines(child: ChildProcess): AsyncGenerator<Record<string, unknown>> {
  const stdout = child.stdout!;
  stdout.setEncoding('utf8');
  return (async function* () {
    let buf = '';
    for await (const chunk of stdout) {
      buf += chunk as string;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) yield JSON.parse(line) as Record<string, unknown>;
        nl = buf.indexOf('\n');
      }
    }
  })();
}

async function firstLine(child: ChildProcess, what: string): Promise<Record<string, unknown>> {
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  for await (const line of lines(child)) return line;
  throw new Error(`${what}: exited without output: ${stderr.trim()}`);
}

/** Runs a client to completion and returns its last JSON line. */
async function runClient(
  node: SimNode,
  from: Place,
  args: string[],
): Promise<Record<string, unknown>> {
  const child = node.track(spawnInNs(from.netns, [process.execPath, TOOL, ...args]));
  let last: Record<string, unknown> = {};
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  for await (const line of lines(child)) last = line;
  await new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  if (last.error !== undefined && last.connected === undefined) {
    throw new Error(`traffic ${args[0]} failed: ${String(last.error)} ${stderr.trim()}`);
  }
  return last;
}

export async function startTcpServer(
  node: SimNode,
  at: Place,
  ip: string,
  port: number,
): Promise<ChildProcess> {
  const child = node.track(
    spawnInNs(at.netns, [process.execPath, TOOL, 'tcp-server', ip, String(port)]),
  );
  await firstLine(child, `tcp server ${ip}:${port}`);
  return child;
}

export async function startUdpServer(
  node: SimNode,
  at: Place,
  ip: string,
  port: number,
  echo = true,
): Promise<ChildProcess> {
  const child = node.track(
    spawnInNs(at.netns, [
      process.execPath,
      TOOL,
      'udp-server',
      ip,
      String(port),
      echo ? 'echo' : 'quiet',
    ]),
  );
  await firstLine(child, `udp server ${ip}:${port}`);
  return child;
}

export interface TcpTransferResult {
  sport: number;
  received: number;
}

/** One TCP connection: sends `sendBytes` (+ a short header line), receives exactly `receiveBytes`. */
export async function tcpTransfer(
  node: SimNode,
  from: Place,
  dst: string,
  port: number,
  opts: { sendBytes: number; receiveBytes: number; holdOpenMs?: number },
): Promise<TcpTransferResult> {
  const r = await runClient(node, from, [
    'tcp-client',
    dst,
    String(port),
    String(opts.sendBytes),
    String(opts.receiveBytes),
    String(opts.holdOpenMs ?? 0),
  ]);
  return { sport: Number(r.sport), received: Number(r.received) };
}

/** A TCP connection that stays open until `close()` (for flows spanning intervals). */
export async function openTcpConnection(
  node: SimNode,
  from: Place,
  dst: string,
  port: number,
  opts: { sendBytes: number; receiveBytes: number; holdOpenMs: number },
): Promise<{ sport: number; done: Promise<TcpTransferResult> }> {
  const child = node.track(
    spawnInNs(from.netns, [
      process.execPath,
      TOOL,
      'tcp-client',
      dst,
      String(port),
      String(opts.sendBytes),
      String(opts.receiveBytes),
      String(opts.holdOpenMs),
    ]),
  );
  const it = lines(child);
  const first = (await it.next()).value as Record<string, unknown> | undefined;
  if (first?.connected !== true) throw new Error(`connect to ${dst}:${port} failed`);
  const done = (async () => {
    let last: Record<string, unknown> = {};
    for await (const line of it) last = line;
    return { sport: Number(last.sport), received: Number(last.received) };
  })();
  return { sport: Number(first.sport), done };
}

export async function udpSend(
  node: SimNode,
  from: Place,
  dst: string,
  port: number,
  opts: { count: number; size: number; gapMs?: number },
): Promise<{ sport: number; sent: number }> {
  const r = await runClient(node, from, [
    'udp-client',
    dst,
    String(port),
    String(opts.count),
    String(opts.size),
    String(opts.gapMs ?? 5),
  ]);
  return { sport: Number(r.sport), sent: Number(r.sent) };
}

export async function tcpMany(
  node: SimNode,
  from: Place,
  dst: string,
  port: number,
  opts: { count: number; concurrency?: number },
): Promise<{ completed: number; failed: number }> {
  const r = await runClient(node, from, [
    'tcp-many',
    dst,
    String(port),
    String(opts.count),
    String(opts.concurrency ?? 1),
  ]);
  return { completed: Number(r.completed), failed: Number(r.failed) };
}

/** A connection attempt expected to be denied; resolves with whether it connected. */
export async function tcpAttempt(
  node: SimNode,
  from: Place,
  dst: string,
  port: number,
  timeoutMs = 1_500,
): Promise<{ connected: boolean }> {
  const r = await runClient(node, from, ['tcp-attempt', dst, String(port), String(timeoutMs)]);
  return { connected: r.connected === true };
}

export async function ping(
  node: SimNode,
  from: Place,
  dst: string,
  count: number,
): Promise<{ received: number }> {
  const child = node.track(
    spawnInNs(from.netns, ['ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', dst]),
  );
  let text = '';
  child.stdout?.on('data', (c: Buffer) => {
    text += c.toString();
  });
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const m = /(\d+) received/.exec(text);
  return { received: m ? Number(m[1]) : 0 };
}

/** A client that opens one short connection every intervalMs until stopped (demo). */
export function startPeriodicTcp(
  node: SimNode,
  from: Place,
  dst: string,
  port: number,
  intervalMs: number,
): ChildProcess {
  return node.track(
    spawnInNs(from.netns, [
      process.execPath,
      TOOL,
      'tcp-periodic',
      dst,
      String(port),
      String(intervalMs),
    ]),
  );
}
