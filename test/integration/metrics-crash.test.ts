/**
 * DeniedPackets across a kill -9 during a CloudWatch outage (issue 19,
 * item 5). On a simulated node with a default-deny policy, the agent runs
 * while CloudWatch (moto) is not there yet: denied packets are flushed into
 * spooled records and pushed into DeniedPackets points that cannot be sent.
 * The agent is killed -9, moto starts, a new agent starts: the records
 * arrive from the spool, and the DeniedPackets metric must show the same
 * packets, which the iptables DROP counter says were denied.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import { POINTS_FILE } from '../../src/metrics/points-journal.js';
import { type Moto, readFromEmulator, readLogEvents, startMoto } from '../../src/sim/moto.js';
import { stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { startTcpServer, udpSend } from '../../src/sim/traffic.js';
import { skipKernel, skipMoto } from '../harness/env.js';
import { startAgent, writeAgentConfig } from '../helpers/agent.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Datapoint {
  Sum?: number;
}

describe.skipIf(skipKernel || skipMoto)('DeniedPackets across kill -9 during an outage', () => {
  let node: SimNode;
  let moto: Moto | undefined;
  let policy: Policy;
  let client: SimPod;
  let server: SimPod;
  let agent: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ft-metcrash-'));
  const spoolDir = join(dir, 'spool');
  const startedAt = Date.now();
  let sent = 0;
  let dropped = 0;
  let recordPackets = 0;
  let metricPackets = 0;

  let config = '';
  const start = () => startAgent(node, config);
  const savedDenied = (): number => {
    const path = join(spoolDir, POINTS_FILE);
    if (!existsSync(path)) return 0;
    const saved = JSON.parse(readFileSync(path, 'utf8')) as {
      points: { MetricName: string; Value: number; Dimensions: unknown[] }[];
    };
    return saved.points
      .filter((p) => p.MetricName === 'DeniedPackets' && p.Dimensions.length === 2)
      .reduce((n, p) => n + p.Value, 0);
  };
  const deniedInRecords = (): number =>
    readLogEvents(moto!.endpoint, node.netns, 'flowtrail-flowlogs-ci', `${node.nodeName}_Flowlogs`)
      .map((e) => decodeRecord(e.message))
      .filter((r) => r.action === 'deny')
      .reduce((n, r) => n + r.packetsIn + r.packetsOut, 0);
  const deniedInMetric = (): number =>
    (
      readFromEmulator(moto!.endpoint, node.netns, [
        'metric',
        'flowtrail',
        'DeniedPackets',
        `ClusterName=ci,NodeName=${node.nodeName}`,
        String(startedAt - 120_000),
        String(Date.now() + 120_000),
      ]) as Datapoint[]
    ).reduce((n, p) => n + (p.Sum ?? 0), 0);

  beforeAll(async () => {
    node = await SimNode.create({ nodeName: 'ip-10-0-8-1' });
    client = node.addPod({ namespace: 'load', name: 'client-0', ip: '10.244.8.2' });
    server = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.8.3' });
    policy = new Policy(node);
    policy.allow({ to: server, proto: 'tcp', port: 8080, name: 'default.allow-api' });
    policy.defaultDeny();
    await startTcpServer(node, server, server.ip, 8080);
    // CloudWatch at 127.0.0.1:5000 in the node namespace: nothing listens there until moto starts.
    config = writeAgentConfig(dir, node, [
      'flowLogs: { flushIntervalSeconds: 2 }',
      `sinks: { cloudwatch: { region: us-east-1, endpoint: 'http://127.0.0.1:5000' } }`,
      `spool: { dir: ${spoolDir} }`,
      'metrics: { pushIntervalSeconds: 1 }',
      `http: { listen: '' }`,
    ]);
    agent = await start();
    sent = (await udpSend(node, client, server.ip, 53, { count: 25, size: 30 })).sent;
    dropped = policy.dropped('default.default-deny').packets;
    // Until a push has taken the denies (they wait, unsent, for CloudWatch), or 8 s.
    const end = Date.now() + 8_000;
    while (savedDenied() < dropped && Date.now() < end) await sleep(200);
    await sleep(2_500); // and a flush has spooled their records
    agent.kill('SIGKILL');
    await new Promise((r) => agent!.once('exit', r));
    agent = undefined;

    moto = await startMoto({ netns: node.netns, port: 5000 });
    agent = await start();
    const until = Date.now() + 40_000;
    for (;;) {
      recordPackets = deniedInRecords();
      metricPackets = deniedInMetric();
      if ((recordPackets >= dropped && metricPackets >= dropped) || Date.now() > until) break;
      await sleep(1_000);
    }
  }, 150_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    await moto?.stop();
    await node?.destroy();
  });

  it('the denied packets are in the records from the spool, as the DROP counter counted them', () => {
    expect(sent).toBe(25);
    expect(dropped).toBe(25);
    expect(recordPackets).toBe(dropped);
  });

  it('the DeniedPackets metric shows the same packets: its points outlived the crash', () => {
    expect(metricPackets).toBe(dropped);
  });
});
