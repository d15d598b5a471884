/**
 * The thin slice end to end: real connections on a simulated node → the agent
 * → CloudWatch Logs (moto_server in the node namespace, since the agent's
 * 127.0.0.1 is that namespace's loopback). The records in CloudWatch are the
 * ones the file sink wrote, filed under their endTime, in the
 * `flowtrail-flowlogs-<cluster>` group and `<node>_Flowlogs` stream, and
 * their counts equal the kernel's.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import { type Moto, readFromEmulator, readLogEvents, startMoto } from '../../src/sim/moto.js';
import { stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { startTcpServer, tcpTransfer, udpSend } from '../../src/sim/traffic.js';
import { conntrackEntries, findEntry, type TruthEntry } from '../../tooling/sim/truth.js';
import { skipKernel, skipMoto } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

interface MetricSeries {
  MetricName: string;
  Dimensions: { Name: string; Value: string }[];
}

interface Datapoint {
  Sum?: number;
  Minimum?: number;
  SampleCount?: number;
}

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skipKernel || skipMoto)('agent → CloudWatch Logs (moto)', () => {
  let node: SimNode;
  let moto: Moto;
  let client: SimPod;
  let server: SimPod;
  let policy: Policy;
  let agent: ChildProcess;
  const dir = mkdtempSync(join(tmpdir(), 'ft-cw-'));
  const file = join(dir, 'flows.log');
  let truth: TruthEntry;
  let events: { timestamp: number; message: string }[] = [];
  let deniedSent = 0;
  let metricsText = '';
  let readyz = '';
  let deniedByNode: Datapoint[] = [];
  let healthy: Datapoint[] = [];
  let metricSeries: MetricSeries[] = [];
  const startedAt = Date.now();

  beforeAll(async () => {
    node = await SimNode.create({ nodeName: 'ip-10-0-0-1', timeWaitSeconds: 2 });
    moto = await startMoto({ netns: node.netns });
    client = node.addPod({ namespace: 'client', name: 'client-1', ip: '10.244.2.2' });
    server = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.2.3' });
    policy = new Policy(node);
    policy.allow({ to: server, proto: 'tcp', port: 8080, name: 'default.allow-api' });
    policy.defaultDeny();
    await startTcpServer(node, server, server.ip, 8080);
    writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());
    writeFileSync(
      join(dir, 'flowtrail.yaml'),
      [
        'clusterName: ci',
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${join(dir, 'endpoints.yaml')} }`,
        'flowLogs: { flushIntervalSeconds: 2, aggregationKindForAllowed: 0 }',
        `sinks: { cloudwatch: { region: us-east-1, endpoint: '${moto.endpoint}', retentionDays: 14 }, file: { path: ${file} } }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
        'metrics: { pushIntervalSeconds: 1 }',
        `http: { listen: '127.0.0.1:9099' }`,
      ].join('\n'),
    );
    agent = node.spawn([process.execPath, CLI, 'agent', '--config', join(dir, 'flowtrail.yaml')], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
    });
    await waitForLog(agent, /agent started/, 20_000);
    const t = await tcpTransfer(node, client, server.ip, 8080, {
      sendBytes: 5000,
      receiveBytes: 50_000,
    });
    truth = findEntry(conntrackEntries(node), { src: client.ip, sport: t.sport, dport: 8080 })!;
    deniedSent = (await udpSend(node, client, server.ip, 53, { count: 4, size: 20 })).sent;
    await sleep(2_500);
    // Scrape once the first PutLogEvents has completed (a slow machine may take longer).
    for (let i = 0; i < 50; i++) {
      metricsText = node.exec(['curl', '-s', 'http://127.0.0.1:9099/metrics']);
      if (/^flowtrail_cloudwatch_put_latency_seconds_count [1-9]/m.test(metricsText)) break;
      await sleep(200);
    }
    readyz = node.exec(['curl', '-s', 'http://127.0.0.1:9099/readyz']);
    await stopProcess(agent, 15_000);
    events = readLogEvents(
      moto.endpoint,
      node.netns,
      'flowtrail-flowlogs-ci',
      'ip-10-0-0-1_Flowlogs',
    );
    const range = [String(startedAt - 120_000), String(Date.now() + 120_000)];
    const nodeDims = `ClusterName=ci,NodeName=${node.nodeName}`;
    deniedByNode = readFromEmulator(moto.endpoint, node.netns, [
      'metric',
      'flowtrail',
      'DeniedPackets',
      nodeDims,
      ...range,
    ]) as Datapoint[];
    healthy = readFromEmulator(moto.endpoint, node.netns, [
      'metric',
      'flowtrail',
      'NodeHealthy',
      nodeDims,
      ...range,
    ]) as Datapoint[];
    metricSeries = readFromEmulator(moto.endpoint, node.netns, [
      'list-metrics',
      'flowtrail',
    ]) as MetricSeries[];
  }, 120_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    await moto?.stop();
    await node?.destroy();
  });

  it('delivers exactly the records the file sink wrote, each once, filed under its endTime', () => {
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    expect(events.map((e) => e.message).sort()).toEqual([...lines].sort());
    for (const e of events) expect(e.timestamp).toBe(decodeRecord(e.message).endTime * 1000);
  });

  it('allowed traffic in CloudWatch equals the conntrack counters, denied equals the DROP counter', () => {
    expect(truth).toBeDefined();
    const records = events.map((e) => decodeRecord(e.message));
    const mine = records.filter(
      (r) => r.action === 'allow' && r.reporter === 'dst' && r.srcPort === truth.orig.sport,
    );
    expect({
      packetsIn: mine.reduce((n, r) => n + r.packetsIn, 0),
      bytesIn: mine.reduce((n, r) => n + r.bytesIn, 0),
      packetsOut: mine.reduce((n, r) => n + r.packetsOut, 0),
      bytesOut: mine.reduce((n, r) => n + r.bytesOut, 0),
    }).toEqual({
      packetsIn: truth.orig.packets,
      bytesIn: truth.orig.bytes,
      packetsOut: truth.reply.packets,
      bytesOut: truth.reply.bytes,
    });
    const denied = records.filter((r) => r.action === 'deny').reduce((n, r) => n + r.packetsIn, 0);
    expect(denied).toBe(deniedSent);
    expect(denied).toBe(policy.dropped('default.default-deny').packets);
    expect(records.find((r) => r.action === 'allow')).toMatchObject({
      dstNamespace: 'prod',
      dstName: 'api-0',
    });
  });

  it('DeniedPackets in CloudWatch sums to the DROP counter; both series exist; NodeHealthy stayed 1', () => {
    const sum = (ps: Datapoint[]) => ps.reduce((n, p) => n + (p.Sum ?? 0), 0);
    expect(sum(deniedByNode)).toBe(policy.dropped('default.default-deny').packets);
    expect(sum(deniedByNode)).toBe(deniedSent);
    // moto matches dimension subsets, so the cluster-wide series is checked by its existence.
    const sets = metricSeries
      .filter((m) => m.MetricName === 'DeniedPackets')
      .map((m) =>
        m.Dimensions.map((d) => d.Name)
          .sort()
          .join(','),
      );
    expect(new Set(sets)).toEqual(new Set(['ClusterName', 'ClusterName,NodeName']));
    expect(healthy.length).toBeGreaterThan(0);
    expect(Math.min(...healthy.map((p) => p.Minimum ?? 0))).toBe(1);
  });

  it('/metrics is valid Prometheus text whose counters moved with the traffic, and /readyz says ready', () => {
    const samples = new Map<string, number>();
    for (const line of metricsText.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        // Ours, and prom-client's default process_* and nodejs_* metrics.
        expect(line).toMatch(/^# (HELP|TYPE) (flowtrail|process|nodejs)_[a-z0-9_]+ .+/);
        continue;
      }
      const m =
        /^([a-z0-9_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+-]+|NaN|Nan)$/.exec(line);
      expect(m, line).not.toBeNull();
      samples.set(`${m![1]}${m![2] ?? ''}`, Number(m![4]));
    }
    expect(samples.get('flowtrail_denied_packets_total')).toBe(deniedSent);
    expect(samples.get('flowtrail_conntrack_events_total{kind="new"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('flowtrail_nflog_packets_total')).toBeGreaterThanOrEqual(deniedSent + 1);
    expect(samples.get('flowtrail_netlink_overruns_total{source="conntrack"}')).toBe(0);
    // The put latency histogram counted the requests that succeeded.
    expect(samples.get('flowtrail_cloudwatch_put_latency_seconds_count')).toBeGreaterThanOrEqual(1);
    // Which build runs, and the process metrics operators graph.
    const build = [...samples.keys()].find((k) => k.startsWith('flowtrail_build_info{'));
    expect(build).toMatch(/version="\d+\.\d+\.\d+",commit="[^"]+",node_version="\d+\.\d+\.\d+"/);
    expect(samples.get('process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(JSON.parse(readyz)).toEqual({ ready: true, reasons: [] });
  });
});
