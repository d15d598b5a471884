/**
 * The agent with its spool on a 1 MiB tmpfs (issue 19, items 1 and 2), on a
 * simulated node with CloudWatch (moto) up, the file sink on another disk as
 * the record of every flush:
 *
 * 1. traffic, delivered; then the tmpfs is filled to the last page and more
 *    traffic makes a flush whose append fails (ENOSPC, torn inside the
 *    segment's last page);
 * 2. while full: /healthz answers (the sender does not spin), /readyz is 503
 *    naming ENOSPC, and `lost_events_total{kind="SpoolFull"}` equals the
 *    records of the failed flushes;
 * 3. space freed, traffic again: delivered, ready again;
 * 4. the tmpfs remounted read-only, traffic: the same with EROFS; rw again;
 * 5. SIGTERM stops the agent by itself.
 * In CloudWatch: every record the file sink wrote, each once, except exactly
 * the records of the failed flushes, which the `<node>_Events` stream
 * reports as SpoolFull with their window.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import { type Moto, readLogEvents, startMoto } from '../../src/sim/moto.js';
import { stopProcess } from '../../src/sim/netns.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { startTcpServer, tcpMany } from '../../src/sim/traffic.js';
import { skipKernel, skipMoto } from '../harness/env.js';
import { startAgent, writeAgentConfig } from '../helpers/agent.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes a file until its filesystem is full (ENOSPC), to the last page. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [64 * 1024, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      for (;;) {
        try {
          if (writeSync(fd, chunk) < size) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

interface LossLine {
  kind: string;
  count: number;
  windowStartMs: number;
  windowEndMs: number;
  detail?: string;
}

describe.skipIf(skipKernel || skipMoto)('spool on a full (then read-only) filesystem', () => {
  let node: SimNode;
  let moto: Moto;
  let client: SimPod;
  let server: SimPod;
  let agent: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ft-fulldisk-'));
  const fs = join(dir, 'spoolfs');
  const spoolDir = join(fs, 'spool');
  const file = join(dir, 'flows.log');
  let mounted = false;
  let log = '';
  const failures: { errno: string; records: number }[] = [];
  const observed: Record<
    string,
    { healthz: string; readyz: string; status: string; lost: number; failedSoFar: number }
  > = {};
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let delivered: string[] = [];
  let losses: LossLine[] = [];

  const curl = (path: string) =>
    node.exec([
      'curl',
      '-s',
      '--max-time',
      '3',
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:9099${path}`,
    ]);
  const metric = (text: string, name: string, kind: string) => {
    const m = new RegExp(`^${name}\\{kind="${kind}"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  const sentTotal = () =>
    Number(/^flowtrail_cloudwatch_records_sent_total (\d+)/m.exec(curl('/metrics'))?.[1] ?? 0);
  const fileLines = () => readFileSync(file, 'utf8').split('\n').filter(Boolean);
  async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > end)
        throw new Error(`timed out waiting for ${what}; agent log:\n${log.slice(-3000)}`);
      await sleep(200);
    }
  }
  /**
   * Traffic, flush by flush, until the agent turns unready (a flush could
   * not be spooled; at most 6 rounds), then what its endpoints say.
   */
  async function failingFlush(label: string): Promise<void> {
    for (let round = 0; round < 6; round++) {
      const before = existsSync(file) ? fileLines().length : 0;
      await tcpMany(node, client, server.ip, 8080, { count: 20, concurrency: 5 });
      await until(() => fileLines().length > before, 20_000, `${label}: a flush`);
      await sleep(300);
      if (curl('/readyz').endsWith('503')) break;
    }
    const healthz = curl('/healthz');
    const readyz = curl('/readyz');
    const lost = metric(
      curl('/metrics'),
      'flowtrail_lost_events_total',
      '(?:SpoolFull|spool_full)',
    );
    observed[label] = {
      healthz,
      readyz: readyz.slice(0, readyz.lastIndexOf('\n')),
      status: readyz.slice(readyz.lastIndexOf('\n') + 1),
      lost,
      failedSoFar: failures.reduce((n, f) => n + f.records, 0),
    };
  }
  /** Traffic, flushed to the file sink, then every record not lost is in CloudWatch. */
  async function delivers(what: string): Promise<void> {
    const before = existsSync(file) ? fileLines().length : 0;
    await tcpMany(node, client, server.ip, 8080, { count: 10, concurrency: 5 });
    await until(() => existsSync(file) && fileLines().length > before, 20_000, `${what}: a flush`);
    const lost = () => failures.reduce((n, f) => n + f.records, 0);
    await until(() => sentTotal() >= fileLines().length - lost(), 30_000, what);
  }

  beforeAll(async () => {
    node = await SimNode.create({ nodeName: 'ip-10-0-9-1', timeWaitSeconds: 1 });
    moto = await startMoto({ netns: node.netns });
    client = node.addPod({ namespace: 'load', name: 'client-0', ip: '10.244.9.2' });
    server = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.9.3' });
    await startTcpServer(node, server, server.ip, 8080);
    mkdirSync(fs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', fs]);
    mounted = true;
    const config = writeAgentConfig(dir, node, [
      'flowLogs: { flushIntervalSeconds: 2, aggregationKindForAllowed: 0 }',
      `sinks: { cloudwatch: { region: us-east-1, endpoint: '${moto.endpoint}', retentionDays: 14 }, file: { path: ${file} } }`,
      `spool: { dir: ${spoolDir}, maxBytes: 1048576 }`,
      'metrics: { enabled: false }',
      `http: { listen: '127.0.0.1:9099' }`,
    ]);
    agent = await startAgent(node, config);
    let partial = '';
    agent.stderr!.on('data', (c: Buffer) => {
      const text = partial + c.toString();
      log += c.toString();
      const complete = text.split('\n');
      partial = complete.pop() ?? '';
      for (const line of complete) {
        if (!line.includes('spool write failed')) continue;
        const j = JSON.parse(line) as {
          msg: string;
          stream?: string;
          errno: string;
          records: number;
        };
        // The main stream's records (the events stream's loss lines are retried, not lost).
        if (!j.msg.startsWith('spool write failed') || j.stream) continue;
        failures.push({ errno: j.errno, records: j.records });
      }
    });

    await delivers('the first delivery');
    fill(join(fs, 'filler'));
    await failingFlush('full');
    rmSync(join(fs, 'filler'));
    await delivers('delivery after space was freed');
    observed.freed = {
      healthz: '',
      readyz: '',
      status: curl('/readyz').slice(-3),
      lost: 0,
      failedSoFar: 0,
    };

    execFileSync('mount', ['-o', 'remount,ro', fs]);
    await failingFlush('readOnly');
    execFileSync('mount', ['-o', 'remount,rw', fs]);
    await delivers('delivery after the remount read-write');

    const a = agent;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      a.once('exit', (code, signal) => resolve({ code, signal })),
    );
    a.kill('SIGTERM');
    exit = await Promise.race([exited, sleep(20_000).then(() => undefined)]);
    if (!exit) await stopProcess(a, 1_000);
    agent = undefined;
    delivered = readLogEvents(
      moto.endpoint,
      node.netns,
      'flowtrail-flowlogs-ci',
      `${node.nodeName}_Flowlogs`,
    ).map((e) => e.message);
    losses = readLogEvents(
      moto.endpoint,
      node.netns,
      'flowtrail-flowlogs-ci',
      `${node.nodeName}_Events`,
    ).map((e) => JSON.parse(e.message) as LossLine);
  }, 240_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    await moto?.stop();
    await node?.destroy();
    if (mounted) execFileSync('umount', ['-l', fs]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('while the disk is full the agent answers /healthz, is unready naming ENOSPC, and counts what it lost', () => {
    const full = observed.full!;
    expect(full.healthz).toBe('ok\n\n200');
    expect(full.status).toBe('503');
    expect(full.readyz).toMatch(/cannot write to the spool \(ENOSPC\)/);
    const lostSoFar = failures
      .filter((f) => f.errno === 'ENOSPC')
      .reduce((n, f) => n + f.records, 0);
    expect(lostSoFar).toBeGreaterThan(0);
    expect(full.lost).toBe(lostSoFar);
  });

  it('a read-only remount is the same: unready naming EROFS, counted', () => {
    const ro = observed.readOnly!;
    expect(ro.healthz).toBe('ok\n\n200');
    expect(ro.status).toBe('503');
    expect(ro.readyz).toMatch(/cannot write to the spool \(EROFS\)/);
    expect(ro.lost).toBe(ro.failedSoFar);
    expect(ro.lost).toBeGreaterThan(observed.full!.lost);
    expect(failures.map((f) => f.errno)).toContain('EROFS');
    expect(observed.freed!.status).toBe('200');
  });

  it('SIGTERM stops the agent by itself', () => {
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('CloudWatch has every record the file sink wrote, each once, but exactly the ones that were never spooled', () => {
    const written = fileLines();
    const lostCount = failures.reduce((n, f) => n + f.records, 0);
    expect(delivered.length).toBe(written.length - lostCount);
    expect(new Set(delivered).size).toBe(delivered.length);
    const missing = [...written].filter((l) => !delivered.includes(l));
    expect(missing).toHaveLength(lostCount);
    // The events stream says which windows are incomplete, with the same count.
    const spoolFull = losses.filter((l) => l.kind === 'SpoolFull');
    expect(spoolFull.reduce((n, l) => n + l.count, 0)).toBe(lostCount);
    for (const r of missing.map((l) => decodeRecord(l))) {
      expect(
        spoolFull.some(
          (l) => l.windowStartMs <= r.endTime * 1000 && r.endTime * 1000 <= l.windowEndMs,
        ),
      ).toBe(true);
    }
  });
});
