/**
 * The test world itself: a simulated node whose kernel counters the other
 * integration tests trust. Real namespaces, veth pairs, iptables and traffic.
 */
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  GetLogEventsCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsTestConfig, startMoto } from '../../src/sim/moto.js';
import { listSystemNamespaces, liveNamespaces } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import {
  openTcpConnection,
  ping,
  startTcpServer,
  startUdpServer,
  tcpAttempt,
  tcpTransfer,
  udpSend,
} from '../../src/sim/traffic.js';
import { conntrackEntries, findEntry } from '../../tooling/sim/truth.js';
import { skipKernel, skipMoto } from '../harness/env.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skipKernel)('simulated node', () => {
  let node: SimNode;
  let client: SimPod;
  let server: SimPod;
  let policy: Policy;

  beforeAll(async () => {
    node = await SimNode.create();
    client = node.addPod({ namespace: 'client', name: 'client-5d7f-abcde', ip: '10.244.1.2' });
    server = node.addPod({ namespace: 'stars', name: 'backend-6d8f9-x2x7q', ip: '10.244.1.3' });
    node.addSink();
    policy = new Policy(node);
    await startTcpServer(node, server, server.ip, 6379);
    await startUdpServer(node, server, server.ip, 5353);
  });

  afterAll(async () => {
    await node?.destroy();
  });

  it('two pods exchange exactly N bytes over TCP and conntrack counts every IP byte', async () => {
    const allowed = policy.allow({
      from: client,
      to: server,
      proto: 'tcp',
      port: 6379,
      name: 'default.allow-redis',
    });
    const { sport, received } = await tcpTransfer(node, client, server.ip, 6379, {
      sendBytes: 10_000,
      receiveBytes: 250_000,
    });
    expect(received).toBe(250_000);
    const entry = findEntry(conntrackEntries(node), {
      src: client.ip,
      dst: server.ip,
      sport,
      dport: 6379,
    });
    expect(entry).toBeDefined();
    // Conntrack counts IP packets including headers: at least the payload, and
    // header bytes are 40..60 per packet for TCP over IPv4 (20 IP + 20..40 TCP).
    const e = entry!;
    const payloadOrig = 10_000 + '250000\n'.length;
    expect(e.orig.bytes - payloadOrig).toBeGreaterThanOrEqual(e.orig.packets * 40);
    expect(e.orig.bytes - payloadOrig).toBeLessThanOrEqual(e.orig.packets * 60);
    expect(e.reply.bytes - 250_000).toBeGreaterThanOrEqual(e.reply.packets * 40);
    expect(e.reply.bytes - 250_000).toBeLessThanOrEqual(e.reply.packets * 60);
    // The allow rule saw exactly the first packet (the SYN) of this connection.
    const counter = policy.counters().find((c) => c.prefix === allowed);
    expect(counter).toMatchObject({ target: 'ACCEPT', packets: 1 });
  });

  it("a denied pair's DROP counter equals the datagrams the client sent", async () => {
    policy.deny({ from: client, to: server, proto: 'udp', port: 9999, name: 'default.deny-9999' });
    const { sent } = await udpSend(node, client, server.ip, 9999, { count: 7, size: 100 });
    expect(sent).toBe(7);
    expect(policy.dropped('default.deny-9999')).toEqual({ packets: 7, bytes: 7 * (100 + 28) });
  });

  it('UDP echo and ICMP show up in conntrack with both directions counted', async () => {
    policy.allow({ from: client, to: server, proto: 'udp', port: 5353, name: 'default.allow-dns' });
    policy.allow({ from: client, to: server, proto: 'icmp', name: 'default.allow-ping' });
    const { sport } = await udpSend(node, client, server.ip, 5353, { count: 4, size: 50 });
    const { received } = await ping(node, client, server.ip, 3);
    expect(received).toBe(3);
    const entries = conntrackEntries(node);
    const udp = findEntry(entries, {
      src: client.ip,
      dst: server.ip,
      sport,
      dport: 5353,
      proto: 17,
    });
    expect(udp?.orig).toMatchObject({ packets: 4, bytes: 4 * 78 });
    expect(udp?.reply).toMatchObject({ packets: 4, bytes: 4 * 78 });
    const icmp = findEntry(entries, { src: client.ip, dst: server.ip, proto: 1 });
    expect(icmp?.orig).toMatchObject({ packets: 3, bytes: 3 * 84 });
  });

  it('the default deny drops what no rule allows, and a long-lived connection stays open', async () => {
    policy.defaultDeny();
    const attempt = await tcpAttempt(node, client, server.ip, 7000, 1_200);
    expect(attempt.connected).toBe(false);
    expect(policy.dropped('default.default-deny').packets).toBeGreaterThanOrEqual(1);
    const open = await openTcpConnection(node, client, server.ip, 6379, {
      sendBytes: 100,
      receiveBytes: 100,
      holdOpenMs: 300,
    });
    const entry = findEntry(conntrackEntries(node), {
      src: client.ip,
      sport: open.sport,
      dport: 6379,
    });
    expect(entry?.state).toBe('ESTABLISHED');
    expect((await open.done).received).toBe(100);
  });

  it('the sink namespace answers at its public-looking address', async () => {
    const sink = node.addSink();
    await startTcpServer(node, sink, '203.0.113.10', 443);
    policy.allow({
      to: '203.0.113.10',
      proto: 'tcp',
      port: 443,
      name: 'default.allow-egress',
      direction: 'egress',
    });
    const { received } = await tcpTransfer(node, client, '203.0.113.10', 443, {
      sendBytes: 10,
      receiveBytes: 20,
    });
    expect(received).toBe(20);
  });

  it('teardown leaves the namespaces and the process table as they were', async () => {
    const extra = await SimNode.create();
    const pod = extra.addPod({ namespace: 'x', name: 'x-1', ip: '10.244.7.7' });
    const server = await startTcpServer(extra, pod, pod.ip, 80);
    expect(listSystemNamespaces()).toContain(pod.netns);
    expect(alive(server.pid!)).toBe(true);
    await extra.destroy();
    expect(listSystemNamespaces()).not.toContain(pod.netns);
    expect(listSystemNamespaces()).not.toContain(extra.netns);
    expect(alive(server.pid!)).toBe(false);
  });

  it("the namespaces this process still holds are only this node's", () => {
    expect(liveNamespaces().filter((n) => !n.startsWith(node.base))).toEqual([]);
    for (const n of liveNamespaces()) expect(listSystemNamespaces()).toContain(n);
  });
});

describe.skipIf(skipMoto)('moto_server', () => {
  it('round trip: create a log group, put an event, read it back', async () => {
    const moto = await startMoto();
    try {
      const logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
      await logs.send(new CreateLogGroupCommand({ logGroupName: 'ft-harness' }));
      await logs.send(
        new CreateLogStreamCommand({ logGroupName: 'ft-harness', logStreamName: 's' }),
      );
      const timestamp = Date.now();
      await logs.send(
        new PutLogEventsCommand({
          logGroupName: 'ft-harness',
          logStreamName: 's',
          logEvents: [{ timestamp, message: 'hello flowtrail' }],
        }),
      );
      const got = await logs.send(
        new GetLogEventsCommand({
          logGroupName: 'ft-harness',
          logStreamName: 's',
          startFromHead: true,
        }),
      );
      expect(got.events?.map((e) => [e.timestamp, e.message])).toEqual([
        [timestamp, 'hello flowtrail'],
      ]);
    } finally {
      await moto.stop();
    }
  });
});
