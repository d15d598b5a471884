/**
 * Reopened 5-tuples at a high rate, on a simulated node, against the kernel.
 *
 * A client pod with a narrow ephemeral port range (and tcp_tw_reuse) opens
 * thousands of short HTTP connections to nginx in a server pod (ab, no
 * keep-alive): nginx closes first, its side sits in TIME_WAIT, and the
 * client reuses each port many times, so the node's conntrack reopens each
 * 5-tuple while the older connection on it is in TIME_WAIT: it destroys that
 * one and tracks a new one, usually under the same CTA_ID. The agent is
 * killed (-9) between two bursts and restarted from its saved baselines.
 *
 * Per reporter, numFlowsStarted and the four counters summed over every
 * record must equal the kernel's own counters, exactly: packets and bytes
 * per direction from counting iptables rules at the top of FORWARD (every
 * packet conntrack accounts to a connection, none INVALID), connections
 * from the policy's NFLOG+ACCEPT rule, which only a connection's first
 * packet reaches. `conntrack -E` runs beside them for the reuse statistics
 * (on a busy machine it can miss events, so it is not the count).
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import { stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { reuseClientPorts, runAb, startNginx } from '../../tooling/sim/http-load.js';
import { type FlowCounts, watchTcpFlow } from '../../tooling/sim/truth.js';
import { TruthLog } from '../../tooling/soak/truth-log.js';
import { skipKernel } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Side {
  started: number;
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
}
const zero = (): Side => ({ started: 0, packetsOut: 0, bytesOut: 0, packetsIn: 0, bytesIn: 0 });

describe.skipIf(skipKernel)('reopened 5-tuples at a high rate, across a kill -9', () => {
  let node: SimNode;
  let client: SimPod;
  let server: SimPod;
  let truth: TruthLog;
  let policy: Policy;
  let counts: FlowCounts;
  let newConnections = 0;
  const dir = mkdtempSync(join(tmpdir(), 'ft-reuse-'));
  const out = join(dir, 'flows.log');
  const config = join(dir, 'flowtrail.yaml');
  let metricsText = '';
  const agents: ChildProcess[] = [];

  const startAgent = async (): Promise<ChildProcess> => {
    const agent = node.spawn([process.execPath, CLI, 'agent', '--config', config]);
    agents.push(agent);
    // Kept beside the records for a failure's post-mortem.
    const log = join(dir, `agent-${agents.length}.log`);
    agent.stderr!.on('data', (c: Buffer) => appendFileSync(log, c));
    await waitForLog(agent, /agent started/, 20_000);
    return agent;
  };

  /** Resolves on the agent's next completed flush (its baselines are saved right after). */
  const nextFlush = (agent: ChildProcess): Promise<void> =>
    new Promise((resolve) => {
      const onData = (c: Buffer) => {
        if (/flushed interval/.test(c.toString())) {
          agent.stderr!.off('data', onData);
          resolve();
        }
      };
      agent.stderr!.on('data', onData);
    });

  beforeAll(async () => {
    // TIME_WAIT long enough that every reopened tuple still holds the older connection.
    node = await SimNode.create({ timeWaitSeconds: 60 });
    server = node.addPod({
      namespace: 'web',
      name: 'nginx-6d8f9c7b5-x2x7q',
      generateName: 'nginx-6d8f9c7b5-',
      ip: '10.244.7.2',
    });
    client = node.addPod({
      namespace: 'load',
      name: 'ab-7f9c6d5b8-abcde',
      generateName: 'ab-7f9c6d5b8-',
      ip: '10.244.7.3',
    });
    // 256 ports for 6,000 connections: each 5-tuple is opened ~23 times.
    reuseClientPorts(client, [40_000, 40_255]);
    policy = new Policy(node);
    policy.allow({ from: client, to: server, proto: 'tcp', port: 80, name: 'default.allow-web' });
    policy.defaultDeny();
    const flow = watchTcpFlow(node, { src: client.ip, dst: server.ip, dport: 80 });
    await startNginx(node, server, dir);
    writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());
    writeFileSync(
      config,
      [
        'clusterName: test',
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${join(dir, 'endpoints.yaml')} }`,
        'flowLogs: { flushIntervalSeconds: 2, aggregationKindForAllowed: 0, aggregationKindForDenied: 1 }',
        `sinks: { file: { path: ${out} } }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
        `http: { listen: '127.0.0.1:9099' }`,
        'log: { level: debug }',
      ].join('\n'),
    );
    truth = TruthLog.start(node, join(dir, 'truth.txt'), { listEveryMs: 0 });
    await sleep(300);
    const first = await startAgent();
    await runAb(client, `http://${server.ip}/`, 3_000, 8);
    // Killed right after a flush saved its baselines, nothing destroyed since
    // (TIME_WAIT is 60 s): the next agent must continue exactly.
    await nextFlush(first);
    await nextFlush(first);
    await sleep(200);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const second = await startAgent();
    // The same tuples again: each reopens a connection the killed agent completed.
    await runAb(client, `http://${server.ip}/`, 3_000, 8);
    await nextFlush(second);
    await nextFlush(second);
    metricsText = node.exec(['curl', '-sf', 'http://127.0.0.1:9099/metrics']);
    await stopProcess(second, 15_000);
    counts = flow.read();
    newConnections = policy.counters().find((c) => c.target === 'ACCEPT')!.packets;
    await truth.stop();
    writeFileSync(join(dir, 'truth.json'), JSON.stringify(truth.connections()));
    writeFileSync(join(dir, 'truth.err'), truth.stderr);
  }, 180_000);

  afterAll(async () => {
    for (const a of agents) await stopProcess(a);
    await node?.destroy();
  });

  it('the kernel reopened most tuples', () => {
    // conntrack -E sees every connection on a quiet machine; here only the spread matters.
    const perTuple = new Map<number, number>();
    for (const { entry } of truth.connections()) {
      if (entry.orig.src !== client.ip || entry.orig.dport !== 80) continue;
      perTuple.set(entry.orig.sport, (perTuple.get(entry.orig.sport) ?? 0) + 1);
    }
    expect(perTuple.size).toBeLessThanOrEqual(256);
    expect([...perTuple.values()].filter((n) => n >= 10).length).toBeGreaterThan(64);
    expect(newConnections).toBeGreaterThanOrEqual(6_000);
    // The agent saw the reopenings as such.
    const reopened = Number(/^flowtrail_conntrack_reopened_total (\d+)/m.exec(metricsText)?.[1]);
    expect(reopened).toBeGreaterThan(1_000);
  });

  it('per reporter, numFlowsStarted and every counter equal the kernel exactly', () => {
    // Every packet went to a connection: conntrack and iptables counted the same ones.
    expect(counts.invalid).toBe(0);
    const kernel = {
      src: {
        started: newConnections,
        packetsOut: counts.orig.packets,
        bytesOut: counts.orig.bytes,
        packetsIn: counts.reply.packets,
        bytesIn: counts.reply.bytes,
      },
      dst: {
        started: newConnections,
        packetsOut: counts.reply.packets,
        bytesOut: counts.reply.bytes,
        packetsIn: counts.orig.packets,
        bytesIn: counts.orig.bytes,
      },
    };
    const agent = { src: zero(), dst: zero() };
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      if (!line) continue;
      const r = decodeRecord(line);
      if (r.action !== 'allow' || r.srcIP !== client.ip || r.dstIP !== server.ip) continue;
      const a = agent[r.reporter];
      a.started += r.numFlowsStarted;
      a.packetsOut += r.packetsOut;
      a.bytesOut += r.bytesOut;
      a.packetsIn += r.packetsIn;
      a.bytesIn += r.bytesIn;
    }
    expect(agent).toEqual(kernel);
  });

  it('nothing was lost or left unreconciled', () => {
    const lost = [...metricsText.matchAll(/^flowtrail_lost_events_total\{kind="(\w+)"\} (\d+)/gm)];
    expect(lost.length).toBeGreaterThan(0);
    for (const [, kind, n] of lost) expect({ kind, n: Number(n) }).toEqual({ kind, n: 0 });
  });
});
