// npm run bench:agent — the agent itself (not the capture CLI) on a simulated
// node under the highest connection rate this machine makes, beside
// `conntrack -E -e NEW,DESTROY -b 33554432` in the same run.
//
// A client pod runs `ab` (no keep-alive, tcp_tw_reuse, a wide port range: the
// kernel reopens 5-tuples while older connections on them are in TIME_WAIT)
// against nginx in a server pod; NFLOG+ACCEPT lets client→server:80 through.
// The agent writes records to a file sink every 5 s. The kernel's truth is
// its own counters: counting iptables rules at the top of FORWARD (packets
// and bytes per direction, none INVALID) and the policy's NFLOG+ACCEPT rule
// (one packet per new connection). Counts are compared per reporter,
// exactly; CPU is utime+stime from /proc over the traffic and two flushes
// after it. `conntrack -E` with ids gives how many 5-tuples were reopened.
// BENCH_RUNS runs (default 3) with a record per connection (aggregationKindForAllowed
// 0, the headline figures), then as many at the shipped default (kind 2,
// `shippedDefaults`); each run is a fresh node, the figures the median run by cpuRatio.
// Writes bench-results/agent.json and the table in docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecord } from '../dist/format/codec.js';
import { Policy } from '../dist/sim/policy.js';
import { SimNode } from '../dist/sim/simnode.js';
import { reuseClientPorts, runAb, startNginx } from '../dist-tooling/sim/http-load.js';
import { watchTcpFlow } from '../dist-tooling/sim/truth.js';
import { TruthLog } from '../dist-tooling/soak/truth-log.js';
import { replaceSection } from './lib/docs-table.js';

const CLI = new URL('../bin/flowtrail.js', import.meta.url).pathname;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 30_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FLUSH_SECONDS = 5;
// nf_conntrack_tcp_timeout_time_wait in the node: the kernel's default (120 s) keeps every
// closed connection listed by each flush's dump for two minutes.
const TIME_WAIT_SECONDS = Number(process.env.BENCH_TIME_WAIT ?? 120);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** utime and stime of a process, in seconds, and its minor page faults. */
function cpuTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    user: Number(fields[11]) / CLK_TCK,
    system: Number(fields[12]) / CLK_TCK,
    minorFaults: Number(fields[7]),
  };
}

const cpuSeconds = (pid) => {
  const t = cpuTimes(pid);
  return t.user + t.system;
};

async function stop(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** The agent's /metrics, read inside the node namespace. */
function scrape(node, port) {
  return node.exec(['curl', '-sf', `http://127.0.0.1:${port}/metrics`]);
}

function metric(text, name, labels = '') {
  const re = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\S+)$`, 'm');
  return Number(re.exec(text)?.[1] ?? Number.NaN);
}

function lostTotals(text) {
  const out = {};
  for (const m of text.matchAll(/^flowtrail_lost_events_total\{kind="([^"]+)"\} (\S+)$/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

async function oneRun(index, allowedKind = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'ft-bench-agent-'));
  // The kernel's own TIME_WAIT (120 s): entries linger as on a real node.
  const node = await SimNode.create({ timeWaitSeconds: TIME_WAIT_SECONDS });
  try {
    const server = node.addPod({
      namespace: 'bench',
      name: 'nginx-7d9f8-x2x7q',
      generateName: 'nginx-7d9f8-',
      ip: '10.244.5.2',
    });
    const client = node.addPod({
      namespace: 'bench',
      name: 'ab-5c6b7-k9p4z',
      generateName: 'ab-5c6b7-',
      ip: '10.244.5.3',
    });
    reuseClientPorts(client, [1024, 65535]);
    const policy = new Policy(node);
    policy.allow({ from: client, to: server, proto: 'tcp', port: 80, name: 'default.allow-ab' });
    policy.defaultDeny();
    const flow = watchTcpFlow(node, { src: client.ip, dst: server.ip, dport: 80 });
    await startNginx(node, server, dir);

    const endpoints = join(dir, 'endpoints.yaml');
    writeFileSync(endpoints, node.endpointsYaml());
    const out = join(dir, 'flows.log');
    const config = join(dir, 'flowtrail.yaml');
    writeFileSync(
      config,
      [
        'clusterName: bench',
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${endpoints} }`,
        `flowLogs: { flushIntervalSeconds: ${FLUSH_SECONDS}, aggregationKindForAllowed: ${allowedKind}, aggregationKindForDenied: 1 }`,
        `sinks: { file: { path: ${out} } }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
        `http: { listen: '127.0.0.1:9099' }`,
      ].join('\n'),
    );
    const truth = TruthLog.start(node, join(dir, 'truth.txt'), { listEveryMs: 0 });
    const reference = node.spawn(['conntrack', '-E', '-e', 'NEW,DESTROY', '-b', '33554432'], {
      stdio: ['ignore', openSync(join(dir, 'reference.txt'), 'w'), 'ignore'],
    });
    // BENCH_PROFILE=DIR: a V8 CPU profile of the agent (where the time goes).
    const profile = process.env.BENCH_PROFILE
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE]
      : [];
    // BENCH_NODE_FLAGS="...": V8/Node flags for the agent only (A/B of a flag in one sitting).
    const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    const agent = node.spawn(
      [process.execPath, ...flags, ...profile, CLI, 'agent', '--config', config],
      {
        stdio: ['ignore', 'ignore', openSync(join(dir, 'agent.log'), 'w')],
      },
    );
    for (
      let i = 0;
      i < 100 && !/agent started/.test(readFileSync(join(dir, 'agent.log'), 'utf8'));
      i++
    ) {
      await sleep(200);
    }
    await sleep(1000);
    const before = { agent: cpuTimes(agent.pid), conntrack: cpuSeconds(reference.pid) };
    const ab = await runAb(client, `http://${server.ip}/`, CONNECTIONS, CONCURRENCY);
    // Two flushes after the traffic: the agent's cost includes reporting it.
    await sleep(2 * FLUSH_SECONDS * 1000 + 500);
    const after = cpuTimes(agent.pid);
    const cpu = {
      agentUser: after.user - before.agent.user,
      agentSystem: after.system - before.agent.system,
      agent: after.user + after.system - before.agent.user - before.agent.system,
      conntrack: cpuSeconds(reference.pid) - before.conntrack,
      minorFaults: after.minorFaults - before.agent.minorFaults,
    };
    const metricsText = scrape(node, 9099);
    // The last flush (a dump, then the partial interval) on SIGTERM.
    await stop(agent);
    await truth.stop();
    await stop(reference);

    const counts = flow.read();
    const newConnections = policy.counters().find((c) => c.target === 'ACCEPT').packets;
    const tuples = new Map();
    for (const { entry } of truth.connections()) {
      if (entry.orig.src !== client.ip || entry.orig.dport !== 80) continue;
      tuples.set(entry.orig.sport, (tuples.get(entry.orig.sport) ?? 0) + 1);
    }
    const want = {
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
    const got = {
      src: { started: 0, packetsOut: 0, bytesOut: 0, packetsIn: 0, bytesIn: 0 },
      dst: { started: 0, packetsOut: 0, bytesOut: 0, packetsIn: 0, bytesIn: 0 },
    };
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      if (!line) continue;
      const r = decodeRecord(line);
      // Kind 2 records carry no addresses: the pods' names then.
      const pair =
        allowedKind === 2
          ? r.srcNamespace === 'bench' &&
            r.srcName.startsWith('ab-5c6b7-') &&
            r.dstName.startsWith('nginx-7d9f8-')
          : r.srcIP === client.ip && r.dstIP === server.ip;
      if (r.action !== 'allow' || !pair) continue;
      const g = got[r.reporter];
      g.started += r.numFlowsStarted;
      g.packetsOut += r.packetsOut;
      g.bytesOut += r.bytesOut;
      g.packetsIn += r.packetsIn;
      g.bytesIn += r.bytesIn;
    }
    const exact = (side) =>
      counts.invalid === 0 && JSON.stringify(got[side]) === JSON.stringify(want[side]);
    const reused = [...tuples.values()].filter((n) => n > 1).length;
    const referenceNew = readFileSync(join(dir, 'reference.txt'), 'utf8')
      .split('\n')
      .filter((l) => /\[NEW\].*dport=80 /.test(l)).length;
    const result = {
      run: index,
      aggregationKindForAllowed: allowedKind,
      connections: newConnections,
      abCompleted: ab.completed,
      abFailed: ab.failed,
      connectionsPerSecond: Math.round(ab.completed / ab.seconds),
      reusedTuples: reused,
      connectionsOnReusedTuples: [...tuples.values()]
        .filter((n) => n > 1)
        .reduce((a, b) => a + b, 0),
      numFlowsStarted: got.src.started,
      countersExact: exact('src') && exact('dst'),
      perReporter: {
        src: { agent: got.src, kernel: want.src },
        dst: { agent: got.dst, kernel: want.dst },
      },
      referenceNewEvents: referenceNew,
      agentNewEvents: metric(metricsText, 'flowtrail_conntrack_events_total', 'kind="new"'),
      agentOverruns: metric(metricsText, 'flowtrail_overruns_total', 'source="conntrack"'),
      lostEvents: lostTotals(metricsText),
      truthFailure: truth.failure,
      agentCpuSeconds: Number(cpu.agent.toFixed(3)),
      agentUserSeconds: Number(cpu.agentUser.toFixed(3)),
      agentSystemSeconds: Number(cpu.agentSystem.toFixed(3)),
      // Pages the agent touched for the first time (fresh mmaps, V8 pages): system time.
      agentMinorFaults: cpu.minorFaults,
      conntrackCpuSeconds: Number(cpu.conntrack.toFixed(3)),
      cpuRatio: Number((cpu.agent / cpu.conntrack).toFixed(3)),
    };
    console.log(
      `run ${index}: ${result.connections} connections at ${result.connectionsPerSecond}/s, ` +
        `${reused} tuples reused; numFlowsStarted ${result.numFlowsStarted}, exact ${result.countersExact}; ` +
        `CPU agent ${result.agentCpuSeconds} s (user ${result.agentUserSeconds}, ${result.agentMinorFaults} minor faults), conntrack -E ${result.conntrackCpuSeconds} s, ratio ${result.cpuRatio}`,
    );
    if (!result.countersExact) console.log(JSON.stringify(result.perReporter));
    return result;
  } finally {
    await node.destroy();
  }
}

const medianOf = (rs) =>
  [...rs].sort((a, b) => a.cpuRatio - b.cpuRatio)[Math.floor((rs.length - 1) / 2)];
// The headline: a record per connection (kind 0), the issue's configuration and the
// agent's dearest. Then the shipped default (kind 2, pod-name prefixes) beside it.
const runs = [];
for (let i = 1; i <= RUNS; i++) runs.push(await oneRun(i, 0));
const defaultRuns = [];
for (let i = 1; i <= RUNS; i++) defaultRuns.push(await oneRun(i, 2));
const median = medianOf(runs);
const defaultMedian = medianOf(defaultRuns);
const result = {
  date: new Date().toISOString(),
  commit: commit(),
  node: process.version,
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  connections: median.connections,
  connectionsPerSecond: median.connectionsPerSecond,
  numFlowsStarted: median.numFlowsStarted,
  countersExact: runs.every((r) => r.countersExact),
  agentCpuSeconds: median.agentCpuSeconds,
  conntrackCpuSeconds: median.conntrackCpuSeconds,
  cpuRatio: median.cpuRatio,
  cpuRatioRuns: runs.map((r) => r.cpuRatio),
  runs,
  shippedDefaults: {
    aggregationKindForAllowed: 2,
    countersExact: defaultRuns.every((r) => r.countersExact),
    agentCpuSeconds: defaultMedian.agentCpuSeconds,
    conntrackCpuSeconds: defaultMedian.conntrackCpuSeconds,
    cpuRatio: defaultMedian.cpuRatio,
    cpuRatioRuns: defaultRuns.map((r) => r.cpuRatio),
    runs: defaultRuns,
  },
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../bench-results/agent.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
replaceSection(
  new URL('../docs/benchmarks.md', import.meta.url),
  'bench:agent',
  [
    '| allowed kind | run | connections | connections/s | reused tuples | numFlowsStarted | counters exact | agent CPU s (user) | `conntrack -E` CPU s | CPU ratio |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...[...runs, ...defaultRuns].map(
      (r) =>
        `| ${r.aggregationKindForAllowed} | ${r.run} | ${r.connections} | ${r.connectionsPerSecond} | ${r.reusedTuples} | ${r.numFlowsStarted} | ${r.countersExact ? 'yes' : '**no**'} | ${r.agentCpuSeconds} (${r.agentUserSeconds}) | ${r.conntrackCpuSeconds} | ${r.cpuRatio} |`,
    ),
    '',
    `Median CPU ratio ${result.cpuRatio} with a record per connection (kind 0), ${result.shippedDefaults.cpuRatio} at the shipped default (kind 2); ${result.date.slice(0, 10)}, commit ${result.commit ?? '?'}, ${result.cores} cores, ${result.node}.`,
  ].join('\n'),
);
console.log(
  `wrote bench-results/agent.json (median cpuRatio ${result.cpuRatio} at kind 0, ${result.shippedDefaults.cpuRatio} at kind 2; exact ${result.countersExact && result.shippedDefaults.countersExact})`,
);
