/**
 * Loss made visible, and an overrun storm that loses no counts.
 *
 * The agent runs on a simulated node with the smallest receive buffer and a
 * long coalescing tick, so a burst of short TCP connections overruns its
 * conntrack socket for sure; its spool starts over its size bound (records
 * left by an "earlier run"), so the first flush must drop the oldest.
 * `conntrack -E` with a 32 MiB buffer listens beside it as the kernel's own
 * count of events. Loopback traffic (the agent's puts to moto, the /metrics
 * scrapes) is untracked, so every conntrack event is the test's traffic.
 *
 * Checked: events received + events the kernel dropped (ConntrackOverrun) =
 * the events `conntrack -E` saw; every connection of the storm is still in
 * the records with the kernel's exact counters (the resync dumps found the
 * ones whose NEW was lost); and each loss shows up with the same count in
 * /metrics, the LostEvents metric and the `<node>_Events` stream, with the
 * time window it affects.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { type Moto, readFromEmulator, readLogEvents, startMoto } from '../../src/sim/moto.js';
import { stopProcess } from '../../src/sim/netns.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { startTcpServer, tcpMany } from '../../src/sim/traffic.js';
import { Spool } from '../../src/sinks/spool/spool.js';
import { conntrackEntries, type TruthEntry } from '../../tooling/sim/truth.js';
import { skipKernel, skipMoto } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONNECTIONS = 3_000;
const PREFILL = 12_000;

interface LossLine {
  event: string;
  node: string;
  kind: string;
  count: number;
  windowStartMs: number;
  windowEndMs: number;
}

function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe.skipIf(skipKernel || skipMoto)('loss made visible: overrun storm and a full spool', () => {
  let node: SimNode;
  let moto: Moto;
  let client: SimPod;
  let server: SimPod;
  let agent: ChildProcess;
  let reference: ChildProcess;
  const dir = mkdtempSync(join(tmpdir(), 'ft-loss-'));
  const spoolDir = join(dir, 'spool');
  let referenceNew = 0;
  let completed = 0;
  let metrics = new Map<string, number>();
  let truth: TruthEntry[] = [];
  let records: FlowRecord[] = [];
  let prefillDelivered: number[] = [];
  let losses: LossLine[] = [];
  const lostMetric = new Map<string, number>();
  const prefillBase = Date.now() - 30 * 60_000;

  beforeAll(async () => {
    // Long TIME_WAIT: no DESTROY during the test, so each connection is one NEW event.
    node = await SimNode.create({ nodeName: 'ip-10-0-7-1', timeWaitSeconds: 300 });
    node.exec(['iptables', '-t', 'raw', '-A', 'PREROUTING', '-i', 'lo', '-j', 'CT', '--notrack']);
    node.exec(['iptables', '-t', 'raw', '-A', 'OUTPUT', '-o', 'lo', '-j', 'CT', '--notrack']);
    moto = await startMoto({ netns: node.netns });
    client = node.addPod({ namespace: 'load', name: 'loadgen-5d9c7-abcde', ip: '10.244.7.2' });
    server = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.7.3' });
    await startTcpServer(node, server, server.ip, 8080);

    // Records an earlier run left undelivered: more than spool.maxBytes (1 MiB).
    const prefill = Spool.open({ dir: spoolDir, maxBytes: 64 << 20, segmentBytes: 128 << 10 });
    // In flushes of 500, as an agent would have spooled them (segments roll between appends).
    for (let from = 0; from < PREFILL; from += 500) {
      prefill.append(
        Array.from({ length: 500 }, (_, k) => ({
          line: `prefill ${String(from + k).padStart(6, '0')} ${'x'.repeat(100)}`,
          timestampMs: prefillBase + from + k,
        })),
      );
    }
    prefill.close();

    writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());
    writeFileSync(
      join(dir, 'flowtrail.yaml'),
      [
        'clusterName: ci',
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${join(dir, 'endpoints.yaml')} }`,
        'flowLogs: { flushIntervalSeconds: 2, aggregationKindForAllowed: 0 }',
        'conntrack: { receiveBufferBytes: 65536, tickMs: 250 }',
        `sinks: { cloudwatch: { region: us-east-1, endpoint: '${moto.endpoint}' } }`,
        `spool: { dir: ${spoolDir}, maxBytes: 1048576 }`,
        'metrics: { pushIntervalSeconds: 1 }',
        `http: { listen: '127.0.0.1:9099' }`,
      ].join('\n'),
    );
    // Straight to a file: read through a pipe by this busy process, conntrack -E
    // itself blocks and overruns (docs/architecture.md, kernel facts).
    const referenceLog = join(dir, 'reference.log');
    reference = node.spawn([
      'sh',
      '-c',
      `exec conntrack -E -e NEW -b 33554432 > '${referenceLog}'`,
    ]);
    agent = node.spawn([process.execPath, CLI, 'agent', '--config', join(dir, 'flowtrail.yaml')], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
    });
    await waitForLog(agent, /agent started/, 20_000);
    completed = (
      await tcpMany(node, client, server.ip, 8080, { count: CONNECTIONS, concurrency: 20 })
    ).completed;
    // Two quiet flushes: the resync dumps and the loss accounting are done.
    await sleep(5_000);
    metrics = parseMetrics(node.exec(['curl', '-s', 'http://127.0.0.1:9099/metrics']));
    truth = conntrackEntries(node).filter((e) => e.orig.dport === 8080);
    await stopProcess(agent, 20_000);
    await stopProcess(reference);
    referenceNew = readFileSync(referenceLog, 'utf8')
      .split('\n')
      .filter((l) => l.includes('[NEW]')).length;
    const group = 'flowtrail-flowlogs-ci';
    const flow = readLogEvents(moto.endpoint, node.netns, group, `${node.nodeName}_Flowlogs`);
    prefillDelivered = flow
      .filter((e) => e.message.startsWith('prefill '))
      .map((e) => Number(e.message.split(' ')[1]));
    records = flow
      .filter((e) => !e.message.startsWith('prefill '))
      .map((e) => decodeRecord(e.message));
    losses = readLogEvents(moto.endpoint, node.netns, group, `${node.nodeName}_Events`).map(
      (e) => JSON.parse(e.message) as LossLine,
    );
    const range = [String(prefillBase - 60_000), String(Date.now() + 120_000)];
    for (const kind of ['ConntrackOverrun', 'SpoolFull', 'HiddenConnections']) {
      const points = readFromEmulator(moto.endpoint, node.netns, [
        'metric',
        'flowtrail',
        'LostEvents',
        `ClusterName=ci,NodeName=${node.nodeName},Kind=${kind}`,
        ...range,
      ]) as { Sum?: number }[];
      lostMetric.set(
        kind,
        points.reduce((n, p) => n + (p.Sum ?? 0), 0),
      );
    }
  }, 240_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    if (reference) await stopProcess(reference);
    await moto?.stop();
    await node?.destroy();
  });

  // /metrics labels the kinds in snake_case; the stream and the CloudWatch metric keep their names.
  const LABEL: Record<string, string> = {
    ConntrackOverrun: 'conntrack_overrun',
    HiddenConnections: 'hidden_connections',
    SpoolFull: 'spool_full',
  };
  const lost = (kind: string) =>
    metrics.get(`flowtrail_lost_events_total{kind="${LABEL[kind]}"}`) ?? 0;
  const streamed = (kind: string) =>
    losses.filter((l) => l.kind === kind).reduce((n, l) => n + l.count, 0);

  it('the storm overran the socket, and received + dropped = what the kernel sent', () => {
    expect(completed).toBe(CONNECTIONS);
    expect(referenceNew).toBe(CONNECTIONS);
    expect(metrics.get('flowtrail_netlink_overruns_total{source="conntrack"}')).toBeGreaterThan(0);
    const received = metrics.get('flowtrail_conntrack_events_total{kind="new"}') ?? 0;
    expect(lost('ConntrackOverrun')).toBeGreaterThan(0);
    expect(received + lost('ConntrackOverrun')).toBe(referenceNew);
    // Nothing was born and died inside the storm (TIME_WAIT outlives the test).
    expect(lost('HiddenConnections')).toBe(0);
  });

  it('every connection of the storm is in the records with the kernel counters, both reporters', () => {
    expect(truth.length).toBe(CONNECTIONS);
    const sums = new Map<string, number[]>();
    for (const r of records) {
      if (r.action !== 'allow' || r.dstPort !== 8080) continue;
      const key = `${r.reporter} ${r.srcPort}`;
      const s = sums.get(key) ?? [0, 0, 0, 0];
      const [pi, po, bi, bo] =
        r.reporter === 'dst'
          ? [r.packetsIn, r.packetsOut, r.bytesIn, r.bytesOut]
          : [r.packetsOut, r.packetsIn, r.bytesOut, r.bytesIn];
      sums.set(key, [s[0]! + pi, s[1]! + po, s[2]! + bi, s[3]! + bo]);
    }
    let exact = 0;
    for (const e of truth) {
      const want = [e.orig.packets, e.reply.packets, e.orig.bytes, e.reply.bytes];
      for (const reporter of ['src', 'dst']) {
        expect(sums.get(`${reporter} ${e.orig.sport}`), `${reporter} ${e.orig.sport}`).toEqual(
          want,
        );
        exact++;
      }
    }
    expect(exact).toBe(2 * CONNECTIONS);
  });

  it('the full spool dropped its oldest records, and only those', () => {
    const dropped = lost('SpoolFull');
    expect(dropped).toBeGreaterThan(0);
    const delivered = new Set(prefillDelivered);
    expect(delivered.size).toBe(prefillDelivered.length); // no duplicates
    expect(delivered.size + dropped).toBe(PREFILL);
    // What is missing is a prefix of the oldest: every missing index precedes every delivered one.
    const firstDelivered = Math.min(...delivered);
    expect(firstDelivered).toBe(PREFILL - delivered.size);
    const spoolLosses = losses.filter((l) => l.kind === 'SpoolFull');
    expect(Math.min(...spoolLosses.map((l) => l.windowStartMs))).toBe(prefillBase);
    expect(Math.max(...spoolLosses.map((l) => l.windowEndMs))).toBe(prefillBase + dropped - 1);
  });

  it('each loss has the same count in /metrics, the LostEvents metric and the <node>_Events stream', () => {
    for (const kind of ['ConntrackOverrun', 'SpoolFull']) {
      expect({ kind, streamed: streamed(kind), metric: lostMetric.get(kind) }).toEqual({
        kind,
        streamed: lost(kind),
        metric: lost(kind),
      });
    }
    expect(lostMetric.get('HiddenConnections')).toBe(0);
    for (const l of losses) {
      expect(l).toMatchObject({ event: 'loss', node: node.nodeName });
      expect(l.windowEndMs).toBeGreaterThanOrEqual(l.windowStartMs);
    }
    // The records stream stays pure: only flow records and the prefill lines.
    expect(records.length).toBeGreaterThan(0);
  });
});
