/**
 * Who the records name, on a simulated node with the real agent: service
 * traffic through a DNAT rule is reported against the backend pod; an IP
 * given to a new pod in another namespace keeps earlier flows with the old
 * owner; aggregation kind 2 folds the replicas of a deployment into one
 * record whose numFlows counts the distinct connections.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { stopProcess } from '../../src/sim/netns.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { startTcpServer, tcpTransfer } from '../../src/sim/traffic.js';
import { skipKernel } from '../harness/env.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const VIP = '10.96.0.10';

async function runAgent(
  node: SimNode,
  dir: string,
  kind: number,
  body: () => Promise<void>,
): Promise<FlowRecord[]> {
  const out = join(dir, `flows-${kind}.log`);
  const config = join(dir, `flowtrail-${kind}.yaml`);
  writeFileSync(
    config,
    [
      'clusterName: test',
      `nodeName: ${node.nodeName}`,
      `endpoints: { file: ${join(dir, 'endpoints.yaml')}, graceSeconds: 600 }`,
      `flowLogs: { flushIntervalSeconds: 2, aggregationKindForAllowed: ${kind} }`,
      `sinks: { file: { path: ${out} } }`,
      `spool: { dir: ${join(dir, `spool-${kind}`)} }`,
      `http: { listen: '' }`,
    ].join('\n'),
  );
  const agent: ChildProcess = node.spawn([process.execPath, CLI, 'agent', '--config', config]);
  await new Promise<void>((resolve, reject) => {
    let text = '';
    agent.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('agent started')) resolve();
    });
    agent.once('exit', (code) => reject(new Error(`agent exited ${code}: ${text}`)));
  });
  try {
    await body();
    await sleep(2_500);
  } finally {
    await stopProcess(agent, 10_000);
  }
  return readFileSync(out, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => decodeRecord(l));
}

describe.skipIf(skipKernel)('attribution on a simulated node', () => {
  let node: SimNode;
  let client: SimPod;
  let replicaA: SimPod;
  let replicaB: SimPod;
  const dir = mkdtempSync(join(tmpdir(), 'ft-attr-'));
  let kind1: FlowRecord[] = [];
  let kind2: FlowRecord[] = [];
  const ports: { dnat?: number; oldOwner?: number; newOwner?: number } = {};

  beforeAll(async () => {
    node = await SimNode.create({ timeWaitSeconds: 1 });
    client = node.addPod({ namespace: 'client', name: 'client-0', ip: '10.244.4.2' });
    const backend = {
      namespace: 'stars',
      generateName: 'backend-6d8f9c7b5-',
      labels: { role: 'backend' },
    };
    replicaA = node.addPod({ ...backend, name: 'backend-6d8f9c7b5-aaaaa', ip: '10.244.4.3' });
    replicaB = node.addPod({ ...backend, name: 'backend-6d8f9c7b5-bbbbb', ip: '10.244.4.4' });
    const old = node.addPod({ namespace: 'team-a', name: 'worker-old', ip: '10.244.4.9' });
    for (const p of [replicaA, replicaB, old]) await startTcpServer(node, p, p.ip, 6379);
    // A ClusterIP-style service: VIP:80 → replica A:6379.
    node.addServiceDnat(VIP, 80, replicaA.ip, 6379);
    writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());

    kind1 = await runAgent(node, dir, 1, async () => {
      ports.dnat = (
        await tcpTransfer(node, client, VIP, 80, { sendBytes: 100, receiveBytes: 1000 })
      ).sport;
      ports.oldOwner = (
        await tcpTransfer(node, client, old.ip, 6379, { sendBytes: 10, receiveBytes: 10 })
      ).sport;
      // The pod is deleted and its IP given to a pod in another namespace.
      await sleep(1_500);
      node.removePod(old);
      const reborn = node.addPod({ namespace: 'team-b', name: 'worker-new', ip: '10.244.4.9' });
      await startTcpServer(node, reborn, reborn.ip, 6379);
      writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());
      await sleep(2_500); // the file source polls every second
      ports.newOwner = (
        await tcpTransfer(node, client, reborn.ip, 6379, { sendBytes: 10, receiveBytes: 10 })
      ).sport;
    });

    kind2 = await runAgent(node, dir, 2, async () => {
      for (let i = 0; i < 3; i++)
        await tcpTransfer(node, client, replicaA.ip, 6379, { sendBytes: 10, receiveBytes: 10 });
      for (let i = 0; i < 2; i++)
        await tcpTransfer(node, client, replicaB.ip, 6379, { sendBytes: 10, receiveBytes: 10 });
    });
  }, 120_000);

  afterAll(async () => {
    await node?.destroy();
  });

  it('service traffic (DNAT) is reported against the backend pod, not the virtual IP', () => {
    const rs = kind1.filter(
      (r) =>
        r.action === 'allow' &&
        r.srcIP === client.ip &&
        r.dstIP !== '-' &&
        r.dstPort === 6379 &&
        r.dstName === replicaA.name,
    );
    expect(rs.length).toBeGreaterThan(0);
    expect(kind1.some((r) => r.dstIP === VIP)).toBe(false);
    expect(rs.every((r) => r.dstIP === replicaA.ip && r.dstNamespace === 'stars')).toBe(true);
  });

  it('an IP given to a new pod: earlier flows keep the old owner, later ones name the new', () => {
    const toIp = kind1.filter((r) => r.dstIP === '10.244.4.9' && r.reporter === 'src');
    const owners = new Set(toIp.map((r) => `${r.dstNamespace}/${r.dstName}`));
    expect(owners).toEqual(new Set(['team-a/worker-old', 'team-b/worker-new']));
    // Each owner's record lies in the interval of its own connection.
    const oldRec = toIp.find((r) => r.dstName === 'worker-old')!;
    const newRec = toIp.find((r) => r.dstName === 'worker-new')!;
    expect(oldRec.endTime).toBeLessThanOrEqual(newRec.startTime);
    expect(ports.oldOwner).toBeDefined();
    expect(ports.newOwner).toBeDefined();
  });

  it('kind 2 folds the replicas into one record per interval; numFlows counts the distinct connections', () => {
    const rs = kind2.filter(
      (r) => r.action === 'allow' && r.reporter === 'src' && r.dstName === 'backend-6d8f9c7b5-*',
    );
    expect(rs.length).toBeGreaterThan(0);
    for (const r of rs) expect([r.srcIP, r.dstIP, r.srcPort]).toEqual(['-', '-', '-']);
    expect(rs.reduce((n, r) => n + r.numFlowsStarted, 0)).toBe(5);
    // A connection can carry traffic in two intervals; each record counts its own distinct ones.
    expect(rs.reduce((n, r) => n + r.numFlows, 0)).toBeGreaterThanOrEqual(5);
    expect(kind2.some((r) => r.dstName === replicaA.name || r.dstName === replicaB.name)).toBe(
      false,
    );
  });
});
