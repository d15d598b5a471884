// npm run bench:capture — flowtrail capture beside `conntrack -E` in one run.
// On a simulated node, `ab -c 50` (no keep-alive) drives short TCP
// connections from a client pod to nginx in a server pod as fast as this
// machine manages, while both listeners run in the node namespace. Counts
// NEW events each saw and the CPU each used (utime+stime from /proc).
// A second run uses a deliberately small receive buffer: overruns must be
// detected and the resync dump must find the connections still in the table.
// Writes bench-results/capture.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimNode } from '../dist/sim/simnode.js';
import { reuseClientPorts, runAb, startNginx } from '../dist-tooling/sim/http-load.js';

const CLI = new URL('../bin/flowtrail.js', import.meta.url).pathname;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 30_000);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

function countLines(file, pattern) {
  let n = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) if (pattern.test(line)) n++;
  return n;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await exited;
}

async function run(node, server, client, dir, label, rcvbuf) {
  const ctOut = join(dir, `${label}-conntrack.txt`);
  const ftOut = join(dir, `${label}-flowtrail.jsonl`);
  const ftErr = join(dir, `${label}-flowtrail.err`);
  // Listeners write straight to files: nothing in this process can slow them down.
  const conntrack = node.spawn(['conntrack', '-E', '-e', 'NEW,DESTROY', '-b', '33554432'], {
    stdio: ['ignore', openSync(ctOut, 'w'), openSync(`${ctOut}.err`, 'w')],
  });
  const flowtrail = node.spawn(
    [
      process.execPath,
      CLI,
      'capture',
      '--json',
      '--no-nflog',
      '--events',
      'new,destroy',
      '--rcvbuf',
      String(rcvbuf),
    ],
    { stdio: ['ignore', openSync(ftOut, 'w'), openSync(ftErr, 'w')] },
  );
  await sleep(1500);
  const cpuBefore = { conntrack: cpuSeconds(conntrack.pid), flowtrail: cpuSeconds(flowtrail.pid) };
  const ab = await runAb(client, `http://${server.ip}/`, CONNECTIONS, 50);
  const seconds = ab.seconds;
  const completed = ab.completed;
  await sleep(3000); // let both drain
  // Connections still in the kernel's table now: flowtrail must know every one.
  const inTable = new Set();
  for (const line of node.exec(['conntrack', '-L', '-p', 'tcp', '--dport', '80']).split('\n')) {
    const m = /sport=(\d+) dport=80 /.exec(line);
    if (m) inTable.add(m[1]);
  }
  const cpu = {
    conntrack: cpuSeconds(conntrack.pid) - cpuBefore.conntrack,
    flowtrail: cpuSeconds(flowtrail.pid) - cpuBefore.flowtrail,
  };
  await Promise.all([stop(conntrack), stop(flowtrail)]);
  await sleep(300);
  const summary = readFileSync(ftErr, 'utf8');
  return {
    connections: completed,
    seconds,
    conntrackNew: countLines(ctOut, /\[NEW\].*dport=80 /),
    flowtrailNew: countLines(ftOut, /"type":"new".*"dport":80,/),
    flowtrailDumped: countLines(ftOut, /"type":"update".*"dport":80,/),
    cpu,
    overruns: Number(/(\d+) overruns/.exec(summary)?.[1] ?? 0),
    resyncs: Number(/(\d+) resyncs/.exec(summary)?.[1] ?? 0),
    ftOut,
    inTable,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'ft-bench-'));
const node = await SimNode.create({ timeWaitSeconds: 30 });
try {
  const server = node.addPod({ namespace: 'bench', name: 'nginx-0', ip: '10.244.5.2' });
  const client = node.addPod({ namespace: 'bench', name: 'ab-0', ip: '10.244.5.3' });
  // Enough client ports for 30k connections, reusing TIME_WAIT sockets.
  reuseClientPorts(client, [1024, 65535]);
  await startNginx(node, server, dir);

  const main = await run(node, server, client, dir, 'main', 32 * 1024 * 1024);
  // The same, with a receive buffer far too small for the burst.
  node.exec(['conntrack', '-F']);
  const small = await run(node, server, client, dir, 'small', 65536);
  // Connections whose NEW was lost but the resync dump still found.
  const seen = new Set();
  for (const line of readFileSync(small.ftOut, 'utf8').split('\n')) {
    const m = /"type":"(new|update)".*"sport":(\d+),"dport":80,/.exec(line);
    if (m) seen.add(m[2]);
  }
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    connections: main.connections,
    flowtrailNew: main.flowtrailNew,
    conntrackNew: main.conntrackNew,
    // ab may open a few connections beyond -n; never report negative loss.
    lost: Math.max(0, main.connections - main.flowtrailNew),
    missedVsConntrack: main.conntrackNew - main.flowtrailNew,
    flowtrailCpuSeconds: Number(main.cpu.flowtrail.toFixed(2)),
    conntrackCpuSeconds: Number(main.cpu.conntrack.toFixed(2)),
    cpuRatio: Number((main.cpu.flowtrail / main.cpu.conntrack).toFixed(3)),
    connectionsPerSecond: Math.round(main.connections / main.seconds),
    overruns: main.overruns,
    smallBuffer: {
      rcvbufBytes: 65536,
      connections: small.connections,
      flowtrailNew: small.flowtrailNew,
      conntrackNew: small.conntrackNew,
      overruns: small.overruns,
      resyncs: small.resyncs,
      stillInTableAtEnd: small.inTable.size,
      stillInTableButUnknownToFlowtrail: [...small.inTable].filter((p) => !seen.has(p)).length,
      // Ports are reused (tcp_tw_reuse), so distinct ports undercount connections.
      distinctPortsSeen: seen.size,
    },
  };
  mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('../bench-results/capture.json', import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.table({
    connections: result.connections,
    'conntrack -E NEW': result.conntrackNew,
    'flowtrail NEW': result.flowtrailNew,
    lost: result.lost,
    'conntrack CPU s': result.conntrackCpuSeconds,
    'flowtrail CPU s': result.flowtrailCpuSeconds,
    'CPU ratio': result.cpuRatio,
    'connections/s': result.connectionsPerSecond,
  });
  console.log('small buffer:', result.smallBuffer);
  console.log('wrote bench-results/capture.json');
} finally {
  await node.destroy();
}
