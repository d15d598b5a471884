/**
 * The agent on a simulated node, writing to the file sink: every packet and
 * byte in the records equals what the kernel counted (conntrack for allowed
 * connections, the iptables DROP rule for denied packets), per 5-tuple and
 * per reporter, across several flush intervals.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import {
  openTcpConnection,
  startTcpServer,
  startUdpServer,
  tcpTransfer,
  udpSend,
} from '../../src/sim/traffic.js';
import { conntrackEntries, findEntry, type TruthEntry } from '../../tooling/sim/truth.js';
import { skipKernel } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sums {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  records: number;
}

function sumFor(records: FlowRecord[], match: (r: FlowRecord) => boolean): Sums {
  const s: Sums = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, records: 0 };
  for (const r of records) {
    if (!match(r)) continue;
    s.packetsIn += r.packetsIn;
    s.packetsOut += r.packetsOut;
    s.bytesIn += r.bytesIn;
    s.bytesOut += r.bytesOut;
    s.records++;
  }
  return s;
}

describe.skipIf(skipKernel)('agent → file sink on a simulated node', () => {
  let node: SimNode;
  let client: SimPod;
  let backendA: SimPod;
  let backendB: SimPod;
  let policy: Policy;
  let agent: ChildProcess;
  const dir = mkdtempSync(join(tmpdir(), 'ft-agent-'));
  const out = join(dir, 'flows.log');
  const truth: { entry: TruthEntry; label: string }[] = [];
  let records: FlowRecord[] = [];
  let deniedSent = 0;

  beforeAll(async () => {
    // TIME_WAIT outlives the lookups below however loaded the machine: dumps complete connections there.
    node = await SimNode.create({ timeWaitSeconds: 10 });
    client = node.addPod({
      namespace: 'client',
      name: 'client-7f9c6d5b8-abcde',
      ip: '10.244.1.2',
      labels: { role: 'client' },
    });
    backendA = node.addPod({
      namespace: 'stars',
      name: 'backend-6d8f9c7b5-x2x7q',
      generateName: 'backend-6d8f9c7b5-',
      ip: '10.244.1.3',
      labels: { role: 'backend' },
    });
    backendB = node.addPod({
      namespace: 'stars',
      name: 'backend-6d8f9c7b5-k9p4z',
      generateName: 'backend-6d8f9c7b5-',
      ip: '10.244.1.4',
      labels: { role: 'backend' },
    });
    policy = new Policy(node);
    policy.allow({ from: client, proto: 'tcp', port: 6379, name: 'default.allow-redis' });
    policy.allow({ from: client, proto: 'udp', port: 5353, name: 'default.allow-dns' });
    policy.defaultDeny();
    for (const b of [backendA, backendB]) {
      await startTcpServer(node, b, b.ip, 6379);
      await startUdpServer(node, b, b.ip, 5353);
    }
    // A connection that exists before the agent starts: found by the start-up dump.
    const early = await openTcpConnection(node, client, backendA.ip, 6379, {
      sendBytes: 3000,
      receiveBytes: 7000,
      holdOpenMs: 4000,
    });

    const endpoints = join(dir, 'endpoints.yaml');
    writeFileSync(endpoints, node.endpointsYaml());
    const config = join(dir, 'flowtrail.yaml');
    writeFileSync(
      config,
      [
        `clusterName: test`,
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${endpoints} }`,
        'flowLogs: { flushIntervalSeconds: 2, aggregationKindForAllowed: 0, aggregationKindForDenied: 0 }',
        `sinks: { file: { path: ${out} } }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
        `http: { listen: '' }`,
        'log: { level: debug }',
      ].join('\n'),
    );
    agent = node.spawn([process.execPath, CLI, 'agent', '--config', config]);
    await waitForLog(agent, /agent started/, 20_000);

    const record = (label: string, m: Parameters<typeof findEntry>[1]) => {
      const entry = findEntry(conntrackEntries(node), m);
      if (!entry) throw new Error(`no conntrack entry for ${label}`);
      truth.push({ entry, label });
    };
    for (const [i, b] of [backendA, backendB, backendA].entries()) {
      const t = await tcpTransfer(node, client, b.ip, 6379, {
        sendBytes: 1000 * (i + 1),
        receiveBytes: 20_000 * (i + 1),
      });
      record(`tcp ${i}`, { src: client.ip, dst: b.ip, sport: t.sport, dport: 6379 });
    }
    const u = await udpSend(node, client, backendB.ip, 5353, { count: 5, size: 40 });
    await sleep(200);
    record('udp', { src: client.ip, dst: backendB.ip, sport: u.sport, dport: 5353, proto: 17 });
    // Denied: UDP to a port no rule allows.
    deniedSent = (await udpSend(node, client, backendA.ip, 9999, { count: 6, size: 30 })).sent;
    // The early connection closes while the agent runs, across flush intervals.
    await early.done;
    await sleep(300);
    record('early', { src: client.ip, dst: backendA.ip, sport: early.sport, dport: 6379 });
    await sleep(4_500); // past two flushes
    await stopProcess(agent, 10_000);
    records = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => decodeRecord(l));
  }, 120_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    await node?.destroy();
  });

  it('writes records in more than one flush interval', () => {
    expect(records.length).toBeGreaterThan(0);
    expect(new Set(records.map((r) => r.endTime)).size).toBeGreaterThan(1);
  });

  it('per 5-tuple and reporter, packets and bytes equal the conntrack counters exactly', () => {
    expect(truth).toHaveLength(5);
    for (const { entry, label } of truth) {
      for (const reporter of ['src', 'dst'] as const) {
        const s = sumFor(
          records,
          (r) =>
            r.action === 'allow' &&
            r.reporter === reporter &&
            r.srcIP === entry.orig.src &&
            r.dstIP === entry.reply.src &&
            r.srcPort === entry.orig.sport &&
            r.dstPort === entry.reply.sport,
        );
        const expected =
          reporter === 'src'
            ? {
                packetsOut: entry.orig.packets,
                bytesOut: entry.orig.bytes,
                packetsIn: entry.reply.packets,
                bytesIn: entry.reply.bytes,
              }
            : {
                packetsIn: entry.orig.packets,
                bytesIn: entry.orig.bytes,
                packetsOut: entry.reply.packets,
                bytesOut: entry.reply.bytes,
              };
        expect({ label, reporter, ...s, records: undefined }).toEqual({
          label,
          reporter,
          ...expected,
          records: undefined,
        });
      }
    }
  });

  it('the connection older than the agent is reported from the start-up dump, not as started', () => {
    const early = truth.find((t) => t.label === 'early')!.entry;
    const rs = records.filter(
      (r) => r.reporter === 'src' && r.srcPort === early.orig.sport && r.action === 'allow',
    );
    expect(rs.reduce((n, r) => n + r.numFlowsStarted, 0)).toBe(0);
    expect(rs.reduce((n, r) => n + r.numFlowsCompleted, 0)).toBe(1);
  });

  it('names pods and namespaces from the endpoints file', () => {
    const r = records.find((x) => x.action === 'allow' && x.dstIP === backendB.ip && x.proto === 6);
    expect(r).toMatchObject({
      srcType: 'wep',
      srcNamespace: 'client',
      srcName: client.name,
      dstType: 'wep',
      dstNamespace: 'stars',
      dstName: backendB.name,
    });
  });

  it("deny records' packets equal the iptables DROP counter", () => {
    const dropped = policy.dropped('default.default-deny');
    expect(dropped.packets).toBe(deniedSent);
    const denied = sumFor(records, (r) => r.action === 'deny' && r.reporter === 'dst');
    expect(denied.packetsIn).toBe(dropped.packets);
    expect(denied.bytesIn).toBe(dropped.bytes);
  });
});
