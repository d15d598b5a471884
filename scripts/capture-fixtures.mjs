#!/usr/bin/env node
// Records real kernel netlink bytes into test/fixtures/netlink/ (as root):
// conntrack NEW/DESTROY events with counters, a dump reply, and NFLOG packets
// for TCP, UDP, ICMP and ICMPv6, each batch as the addon delivered it, plus
// fixtures.json with what `conntrack -L` and the traffic said about them.
// Run: npm run build && npm run build:tooling && node scripts/capture-fixtures.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { NetlinkSocket } from '../dist/capture/netlink-socket.js';
import { buildDumpRequest } from '../dist/conntrack/request.js';
import { buildNflogBindRequests } from '../dist/nflog/request.js';
import { Policy } from '../dist/sim/policy.js';
import { SimNode } from '../dist/sim/simnode.js';
import {
  openTcpConnection,
  ping,
  startTcpServer,
  startUdpServer,
  tcpTransfer,
  udpSend,
} from '../dist/sim/traffic.js';
import { conntrackEntries, findEntry } from '../dist-tooling/sim/truth.js';

const out = new URL('../test/fixtures/netlink/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The sockets must live in the node namespace: re-run this script inside it.
if (process.argv[2] !== '--inside') {
  const node = await SimNode.create({ timeWaitSeconds: 1 });
  try {
    const a = node.addPod({ namespace: 'a', name: 'a-1', ip: '10.244.1.2' });
    const b = node.addPod({ namespace: 'b', name: 'b-1', ip: '10.244.1.3' });
    const policy = new Policy(node);
    policy.allow({ to: b, proto: 'tcp', port: 80, name: 'default.allow-web' });
    policy.allow({ to: b, proto: 'udp', port: 53, name: 'default.allow-dns' });
    policy.allow({ to: b, proto: 'icmp', name: 'default.allow-ping' });
    policy.defaultDeny();
    node.exec([
      'ip6tables',
      '-w',
      '-A',
      'OUTPUT',
      '-o',
      'lo',
      '-p',
      'ipv6-icmp',
      '-j',
      'NFLOG',
      '--nflog-group',
      '2',
      '--nflog-prefix',
      'APE0|default.allow-v6',
    ]);
    await startTcpServer(node, b, b.ip, 80);
    await startUdpServer(node, b, b.ip, 53);
    const held = await openTcpConnection(node, a, b.ip, 80, {
      sendBytes: 100,
      receiveBytes: 200,
      holdOpenMs: 2500,
    });
    const recorder = node.spawn([process.execPath, new URL(import.meta.url).pathname, '--inside'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let ready = '';
    await new Promise((resolve) =>
      recorder.stdout.on('data', (c) => {
        ready += c;
        if (ready.includes('ready')) resolve();
      }),
    );
    const truth = {};
    const t = await tcpTransfer(node, a, b.ip, 80, { sendBytes: 1000, receiveBytes: 4000 });
    truth.tcp = findEntry(conntrackEntries(node), { src: a.ip, sport: t.sport, dport: 80 });
    const u = await udpSend(node, a, b.ip, 53, { count: 2, size: 30 });
    await sleep(100);
    truth.udp = findEntry(conntrackEntries(node), {
      src: a.ip,
      sport: u.sport,
      dport: 53,
      proto: 17,
    });
    await ping(node, a, b.ip, 1);
    await sleep(100);
    truth.icmp = findEntry(conntrackEntries(node), { src: a.ip, proto: 1 });
    truth.held = findEntry(conntrackEntries(node), { src: a.ip, sport: held.sport, dport: 80 });
    truth.denied = { sent: (await udpSend(node, a, b.ip, 9999, { count: 2, size: 10 })).sent };
    node.exec(['ping', '-6', '-n', '-c', '1', '-W', '1', '::1']);
    await held.done;
    await sleep(4000); // TIME_WAIT 1 s, then GC: DESTROY events
    recorder.kill('SIGTERM');
    await new Promise((r) => recorder.once('exit', r));
    writeFileSync(`${out}truth.json`, `${JSON.stringify(truth, null, 2)}\n`);
    console.log(`fixtures written to ${out}`);
  } finally {
    await node.destroy();
  }
} else {
  const batches = { events: [], dump: [], nflog: [] };
  const events = NetlinkSocket.open({
    groups: [1, 3],
    tickMs: 0,
    onBatch: (b) => batches.events.push(Buffer.from(b)),
  });
  events.listen(true);
  const nflog = NetlinkSocket.open({
    groups: [],
    tickMs: 0,
    onBatch: (b) => batches.nflog.push(Buffer.from(b)),
  });
  nflog.listen(true);
  for (const [i, g] of [1, 2].entries()) {
    for (const req of buildNflogBindRequests(g, 1000 + 10 * i, { copyRange: 128 })) nflog.send(req);
  }
  await sleep(300);
  process.stdout.write('ready\n');
  // Dump while the held connection is open.
  await sleep(1500);
  const dump = NetlinkSocket.open({
    groups: [],
    tickMs: 0,
    onBatch: (b) => batches.dump.push(Buffer.from(b)),
  });
  dump.listen(true);
  dump.send(buildDumpRequest(4242));
  process.once('SIGTERM', () => {
    events.close();
    nflog.close();
    dump.close();
    for (const [name, list] of Object.entries(batches))
      writeFileSync(`${out}${name}.bin`, Buffer.concat(list));
    process.exit(0);
  });
}
