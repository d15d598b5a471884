/**
 * Denies from the kernel's drop events (issue #20) on a simulated node, one
 * agent with the default deny source (both), three data planes at once:
 *  (a) a TC classifier on the backend's host-side veth drops client → backend
 *      (TC_EGRESS, the VPC CNI way): records equal the program's own counters
 *      (its BPF map);
 *  (b) an iptables DROP without NFLOG drops client → api: records equal the
 *      rule's packet and byte counters;
 *  (c) an NFLOG deny rule then DROP (the policy chain's default deny) drops
 *      client → db: both sources see each packet, and it counts once.
 * DeniedPackets in CloudWatch (moto) sums to all three. Drops in another
 * network namespace (an iptables DROP inside the client pod) are not this
 * node's and count nowhere; a drop that is not policy (IP_NOPROTO, raw IP
 * protocol 253 to the node's loopback) is DroppedPackets{Reason}.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { type Moto, readFromEmulator, startMoto } from '../../src/sim/moto.js';
import { inNs, run, stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { TcPolicy } from '../../src/sim/tc-policy.js';
import { udpSend } from '../../src/sim/traffic.js';
import { skipKdrops, skipMoto } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

interface Datapoint {
  Sum?: number;
}

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Packets and bytes of one FORWARD rule (1-based), from iptables' exact counters. */
function forwardRule(node: SimNode, n: number): { packets: number; bytes: number; target: string } {
  const text = node.exec(['iptables', '-w', '-L', 'FORWARD', '-n', '-v', '-x', '--line-numbers']);
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)/.exec(line);
    if (m && Number(m[1]) === n)
      return { packets: Number(m[2]), bytes: Number(m[3]), target: m[4]! };
  }
  throw new Error(`no FORWARD rule ${n}: ${text}`);
}

/** Raw IPv4 packets of protocol 253 to 127.0.0.1 in the node: no handler, so IP_NOPROTO drops. */
function sendUnknownProtocol(node: SimNode, count: number): void {
  const py = [
    'import socket, struct',
    's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)',
    `h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, 0, 0, 64, 253, 0, socket.inet_aton('127.0.0.1'), socket.inet_aton('127.0.0.1'))`,
    `for i in range(${count}): s.sendto(h + bytes(20), ('127.0.0.1', 0))`,
  ].join('\n');
  node.exec(['python3', '-c', py]);
}

function sum(records: readonly FlowRecord[]) {
  return {
    packets: records.reduce((n, r) => n + r.packetsIn + r.packetsOut, 0),
    bytes: records.reduce((n, r) => n + r.bytesIn + r.bytesOut, 0),
  };
}

describe.skipIf(skipKdrops || skipMoto)('kernel drop events as denies (kfree_skb)', () => {
  let node: SimNode;
  let moto: Moto;
  let client: SimPod;
  let backend: SimPod;
  let api: SimPod;
  let db: SimPod;
  let tc: TcPolicy;
  let policy: Policy;
  let agent: ChildProcess;
  const dir = mkdtempSync(join(tmpdir(), 'ft-kdrops-'));
  const file = join(dir, 'flows.log');
  let agentLog = '';
  let metricsText = '';
  let records: FlowRecord[] = [];
  let deniedByNode: Datapoint[] = [];
  let droppedNoProto: Datapoint[] = [];
  const sent = { a: 0, b: 0, c: 0, otherNetns: 0 };
  const noProto = 7;
  const startedAt = Date.now();

  beforeAll(async () => {
    node = await SimNode.create({ nodeName: 'ip-10-0-0-9' });
    moto = await startMoto({ netns: node.netns });
    client = node.addPod({
      namespace: 'client',
      name: 'client-6c8d7b5f9-p9w3v',
      ip: '10.244.3.2',
      labels: { role: 'client' },
    });
    backend = node.addPod({
      namespace: 'stars',
      name: 'backend-7f6d4b9c8-q4z7m',
      ip: '10.244.3.3',
      labels: { role: 'backend' },
    });
    api = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.3.4' });
    db = node.addPod({ namespace: 'prod', name: 'db-0', ip: '10.244.3.5' });
    // FORWARD: 1 established ACCEPT (SimNode), 2 the plain DROP of (b), 3 the policy chain.
    policy = new Policy(node);
    node.exec([
      'iptables',
      '-w',
      '-I',
      'FORWARD',
      '2',
      '-p',
      'udp',
      '--dport',
      '9999',
      '-j',
      'DROP',
    ]);
    policy.allow({ to: backend, proto: 'udp', port: 6379, name: 'default.allow-backend' });
    policy.defaultDeny();
    tc = TcPolicy.attach(node, backend);
    tc.isolate();
    // Not this node's namespace: a drop inside the client pod.
    run(
      inNs(client.netns, [
        'iptables',
        '-w',
        '-A',
        'OUTPUT',
        '-p',
        'udp',
        '--dport',
        '7777',
        '-j',
        'DROP',
      ]),
    );
    writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());
    // The cluster's view of what the TC program enforces: only the frontend may reach the backend.
    writeFileSync(
      join(dir, 'policies.yaml'),
      [
        'apiVersion: networking.k8s.io/v1',
        'kind: NetworkPolicy',
        'metadata: { namespace: stars, name: backend-policy }',
        'spec:',
        '  podSelector: { matchLabels: { role: backend } }',
        '  policyTypes: [Ingress]',
        '  ingress:',
        '    - from: [{ podSelector: { matchLabels: { role: frontend } } }]',
        '      ports: [{ protocol: UDP, port: 6379 }]',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'flowtrail.yaml'),
      [
        'clusterName: ci',
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${join(dir, 'endpoints.yaml')} }`,
        'flowLogs: { flushIntervalSeconds: 2, aggregationKindForDenied: 0, includePolicies: true }',
        `denies: { networkPoliciesFile: ${join(dir, 'policies.yaml')} }`,
        `sinks: { cloudwatch: { region: us-east-1, endpoint: '${moto.endpoint}' }, file: { path: ${file} } }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
        'metrics: { pushIntervalSeconds: 1, droppedPackets: true }',
        `http: { listen: '127.0.0.1:9099' }`,
      ].join('\n'),
    );
    agent = node.spawn([process.execPath, CLI, 'agent', '--config', join(dir, 'flowtrail.yaml')], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
    });
    agent.stderr!.on('data', (c: Buffer) => {
      agentLog += c.toString();
    });
    await waitForLog(agent, /agent started/, 20_000);
    sent.a = (await udpSend(node, client, backend.ip, 6379, { count: 5, size: 100 })).sent;
    sent.b = (await udpSend(node, client, api.ip, 9999, { count: 4, size: 60 })).sent;
    sent.c = (await udpSend(node, client, db.ip, 5432, { count: 6, size: 200 })).sent;
    sent.otherNetns = (await udpSend(node, client, api.ip, 7777, { count: 3, size: 10 })).sent;
    sendUnknownProtocol(node, noProto);
    await sleep(2_500);
    for (let i = 0; i < 50; i++) {
      metricsText = node.exec(['curl', '-s', 'http://127.0.0.1:9099/metrics']);
      if (/^flowtrail_kernel_drops_total\{reason="IP_NOPROTO"\} [1-9]/m.test(metricsText)) break;
      await sleep(200);
    }
    await stopProcess(agent, 15_000);
    records = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => decodeRecord(l));
    const range = [String(startedAt - 120_000), String(Date.now() + 120_000)];
    const dims = `ClusterName=ci,NodeName=${node.nodeName}`;
    deniedByNode = readFromEmulator(moto.endpoint, node.netns, [
      'metric',
      'flowtrail',
      'DeniedPackets',
      dims,
      ...range,
    ]) as Datapoint[];
    droppedNoProto = readFromEmulator(moto.endpoint, node.netns, [
      'metric',
      'flowtrail',
      'DroppedPackets',
      `${dims},Reason=IP_NOPROTO`,
      ...range,
    ]) as Datapoint[];
  }, 120_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    await moto?.stop();
    await node?.destroy();
  });

  const denied = (to: SimPod) =>
    records.filter(
      (r) => r.action === 'deny' && r.dstName === to.name && r.dstNamespace === to.namespace,
    );

  it('chose the kernel and NFLOG sources both, by default', () => {
    expect(agentLog).toMatch(/"source":"both"[^\n]*"msg":"deny source"/);
  });

  it('(a) TC classifier drops: deny records equal the program’s own counters, reported by the backend', () => {
    const truth = tc.counters();
    expect(truth.packets).toBe(sent.a);
    expect(sum(denied(backend))).toEqual(truth);
    // conntrack counted the datagrams before TC dropped them: still not allowed traffic.
    expect(records.filter((r) => r.action === 'allow' && r.dstName === backend.name)).toEqual([]);
    for (const r of denied(backend)) {
      expect(r).toMatchObject({
        reporter: 'dst',
        srcNamespace: 'client',
        srcName: client.name,
        dstPort: 6379,
        proto: 17,
        // Named by the NetworkPolicy evaluator: the policy that isolates the backend for ingress.
        policies: 'stars.backend-policy',
      });
    }
  });

  it('(b) iptables DROP without NFLOG: deny records equal the rule’s counters', () => {
    const rule = forwardRule(node, 2);
    expect(rule.target).toBe('DROP');
    expect(rule.packets).toBe(sent.b);
    expect(sum(denied(api))).toEqual({ packets: rule.packets, bytes: rule.bytes });
    // No NetworkPolicy selects the api pod: the policies allow it, so the drop is named by nothing.
    for (const r of denied(api))
      expect(r).toMatchObject({
        reporter: 'dst',
        srcName: client.name,
        dstPort: 9999,
        policies: '-',
      });
  });

  it('(c) NFLOG + DROP with both sources: each packet counts once, as the DROP counter says', () => {
    const truth = policy.dropped('default.default-deny');
    expect(truth.packets).toBe(sent.c);
    expect(sum(denied(db))).toEqual(truth);
    // Counted as the NFLOG deny, with the name from its rule prefix.
    for (const r of denied(db)) expect(r.policies).toBe('default.default-deny');
    const matched = /^flowtrail_kernel_drops_matched_total (\d+)$/m.exec(metricsText)?.[1];
    expect(Number(matched)).toBe(sent.c);
    // How long a pair's halves arrived apart (logged at stop): well inside the 1 s window.
    const lag = /"maxLagMs":(\d+)[^\n]*NFLOG\/kernel drop matching/.exec(agentLog)?.[1];
    expect(Number(lag)).toBeLessThan(1_000);
    console.log(`NFLOG/kernel drop pair lag, max: ${lag} ms`);
  });

  it('drops in another network namespace are not this node’s', () => {
    expect(sent.otherNetns).toBe(3);
    expect(records.filter((r) => r.dstPort === 7777)).toEqual([]);
    const nf = /^flowtrail_kernel_drops_total\{reason="NETFILTER_DROP"\} (\d+)$/m.exec(
      metricsText,
    )?.[1];
    expect(Number(nf)).toBe(sent.b + sent.c);
    const tcEgress = /^flowtrail_kernel_drops_total\{reason="TC_EGRESS"\} (\d+)$/m.exec(
      metricsText,
    )?.[1];
    expect(Number(tcEgress)).toBe(sent.a);
  });

  it('DeniedPackets in CloudWatch sums to the three droppers’ counters', () => {
    const total = deniedByNode.reduce((n, p) => n + (p.Sum ?? 0), 0);
    expect(total).toBe(
      tc.counters().packets +
        forwardRule(node, 2).packets +
        policy.dropped('default.default-deny').packets,
    );
  });

  it('a drop that is not policy is DroppedPackets with its Reason, and in /metrics', () => {
    expect(droppedNoProto.reduce((n, p) => n + (p.Sum ?? 0), 0)).toBe(noProto);
    const m = /^flowtrail_kernel_drops_total\{reason="IP_NOPROTO"\} (\d+)$/m.exec(metricsText)?.[1];
    expect(Number(m)).toBe(noProto);
  });

  // Last: it adds drops to the rule counters the tests above compare with.
  it('flowtrail capture --kernel-drops prints each drop of the node with its reason', async () => {
    const cap = node.spawn([
      process.execPath,
      CLI,
      'capture',
      '--kernel-drops',
      '--no-conntrack',
      '--no-nflog',
      '--json',
      '--port',
      '9999',
      '--count',
      '2',
      '--duration',
      '20',
    ]);
    let out = '';
    cap.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    // It exits after the second drop, possibly before udpSend returns.
    const exited = new Promise((r) => cap.once('exit', r));
    await waitForLog(cap, /listening/, 10_000);
    const { sport } = await udpSend(node, client, api.ip, 9999, { count: 2, size: 30 });
    await exited;
    expect(
      out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(
      [1, 2].map(() => ({
        source: 'kdrop',
        reason: 'NETFILTER_DROP',
        ifindex: expect.any(Number),
        proto: 17,
        src: client.ip,
        dst: api.ip,
        sport,
        dport: 9999,
        bytes: 58,
      })),
    );
  });
});
