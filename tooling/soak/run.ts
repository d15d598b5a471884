/**
 * The soak: the agent on a simulated node for N minutes of mixed traffic
 * (short and long TCP, UDP, ICMP, denied attempts, a DNAT service), pod
 * churn with IPs reused within seconds, CloudWatch faults through the fault
 * proxy (outages, throttling, resets, the endpoint down), kill -9 and
 * restarts at random moments, and overrun storms (a small receive buffer
 * and bursts of connections). At the end every 5-tuple's totals in
 * CloudWatch are checked against the kernel's counters (tooling/soak/checks.ts)
 * and the agent's RSS and file descriptors over time are reported.
 *
 * Needs root (namespaces, iptables, conntrack) and moto; `npm run soak`.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { decodeRecord } from '../../src/format/codec.js';
import { type Moto, readLogEvents, startMoto } from '../../src/sim/moto.js';
import { stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import {
  openTcpConnection,
  ping,
  startTcpServer,
  startUdpServer,
  tcpAttempt,
  tcpMany,
  tcpTransfer,
  udpSend,
} from '../../src/sim/traffic.js';
import { reuseClientPorts, runAb, startNginx } from '../sim/http-load.js';
import { type CheckResult, checkSoak, dedupe, type Tenancy, type TimeWindow } from './checks.js';
import { TruthLog } from './truth-log.js';

export interface SoakOptions {
  minutes: number;
  /** kill -9 and restarts of the agent over the run (default 12; 0: one agent throughout). */
  kills?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  random?: () => number;
}

export interface Sample {
  atMs: number;
  pid: number;
  rssMiB: number;
  fds: number;
  /** From the agent's /metrics every few samples: where the RSS goes. */
  heapUsedMiB?: number;
  heapTotalMiB?: number;
  externalMiB?: number;
  flowsTracked?: number;
  spoolRecords?: number;
}

/** The gauges of the agent's /metrics the soak samples, by sample field. */
const SCRAPED = {
  heapUsedMiB: 'nodejs_heap_size_used_bytes',
  heapTotalMiB: 'nodejs_heap_size_total_bytes',
  externalMiB: 'nodejs_external_memory_bytes',
  flowsTracked: 'flowtrail_flows_tracked',
  spoolRecords: 'flowtrail_spool_records',
} as const;

/** The SCRAPED gauges out of a Prometheus text exposition (bytes as MiB). */
export function scrapeGauges(text: string): Partial<Pick<Sample, keyof typeof SCRAPED>> {
  const out: Partial<Pick<Sample, keyof typeof SCRAPED>> = {};
  for (const [field, metric] of Object.entries(SCRAPED) as [keyof typeof SCRAPED, string][]) {
    const m = new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    if (!m) continue;
    const v = Number(m[1]);
    if (Number.isFinite(v)) out[field] = metric.endsWith('_bytes') ? v / 1024 / 1024 : v;
  }
  return out;
}

export interface SoakResult {
  minutes: number;
  startedAtMs: number;
  endedAtMs: number;
  kills: number;
  restarts: number;
  faults: string[];
  storms: number;
  churns: number;
  /** Bursts that reopen 5-tuples (ab from 256 client ports with tw_reuse), and their connections. */
  reuseBursts: number;
  reuseConnections: number;
  deniedAttempts: number;
  records: number;
  duplicates: number;
  lost: Record<string, number>;
  /** The agent's loss events as read back from the <node>_Events stream. */
  lossEvents: {
    kind: string;
    count: number;
    windowStartMs: number;
    windowEndMs: number;
    detail?: string;
  }[];
  check: CheckResult;
  samples: Sample[];
  rssMaxMiB: number;
  /** Least-squares slope over the samples after warm-up (the first quarter), per hour. */
  rssSlopeMiBPerHour: number;
  fdSlopePerHour: number;
  /** The same trends within the longest-running agent process (kill -9 restarts reset RSS). */
  longestRun: { pid: number; minutes: number; rssSlopeMiBPerHour: number; fdSlopePerHour: number };
  downWindows: TimeWindow[];
  /** Set when `conntrack -E` lost events or quit; the periodic listings cover for it. */
  truthFailure: string | undefined;
  pass: boolean;
}

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const PROXY = new URL('../../scripts/fault-proxy.mjs', import.meta.url).pathname;
const FLUSH_S = 5;
/** NODE_OPTIONS of the DaemonSet (test/unit/deploy.test.ts keeps them equal). */
export const AGENT_NODE_FLAGS = [
  '--max-old-space-size=384',
  '--max-semi-space-size=4',
  '--optimize-for-size',
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function slopePerHour(points: readonly [number, number][]): number {
  if (points.length < 3) return 0;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 3_600_000;
}

function longestRun(samples: readonly Sample[]): SoakResult['longestRun'] {
  const byPid = new Map<number, Sample[]>();
  for (const s of samples) {
    const list = byPid.get(s.pid);
    if (list) list.push(s);
    else byPid.set(s.pid, [s]);
  }
  let best: Sample[] = [];
  for (const list of byPid.values()) if (list.length > best.length) best = list;
  // Past its first quarter (warm-up).
  const from = best.length > 0 ? best[0]!.atMs + (best.at(-1)!.atMs - best[0]!.atMs) / 4 : 0;
  const warm = best.filter((s) => s.atMs >= from);
  return {
    pid: best[0]?.pid ?? 0,
    minutes: best.length > 1 ? (best.at(-1)!.atMs - best[0]!.atMs) / 60_000 : 0,
    rssSlopeMiBPerHour: slopePerHour(warm.map((s) => [s.atMs, s.rssMiB])),
    fdSlopePerHour: slopePerHour(warm.map((s) => [s.atMs, s.fds])),
  };
}

function sampleProcess(pid: number): { rssMiB: number; fds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { rssMiB: kb / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

async function firstJsonLine(child: ChildProcess): Promise<Record<string, unknown>> {
  const rl = createInterface({ input: child.stdout! });
  for await (const line of rl) {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {}
  }
  throw new Error('process exited before printing its first line');
}

/** Waits until a child's output (pino JSON lines) contains msg, or times out. */
function waitForMsg(child: ChildProcess, msg: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString();
      if (buf.includes(`"msg":"${msg}"`)) {
        cleanup();
        resolve();
      }
      if (buf.length > 1 << 20) buf = buf.slice(-4096);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`agent did not log "${msg}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => {});
  const random = o.random ?? Math.random;
  const durationMs = o.minutes * 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'flowtrail-soak-'));
  let node: SimNode | undefined;
  let moto: Moto | undefined;
  try {
    // TIME_WAIT outlives two flush dumps, so every closed TCP connection is seen final by a dump.
    node = await SimNode.create({ nodeName: 'soak-node', timeWaitSeconds: 3 * FLUSH_S });
    const n = node;
    // Loopback (the agent's puts, /metrics) untracked: every conntrack entry is test traffic.
    n.exec(['iptables', '-t', 'raw', '-A', 'PREROUTING', '-i', 'lo', '-j', 'CT', '--notrack']);
    n.exec(['iptables', '-t', 'raw', '-A', 'OUTPUT', '-o', 'lo', '-j', 'CT', '--notrack']);
    moto = await startMoto({ netns: n.netns });
    const proxyProc = n.spawn([process.execPath, PROXY, moto.endpoint]);
    const proxyEndpoint = String((await firstJsonLine(proxyProc)).endpoint);
    const proxy = (cmd: string) => proxyProc.stdin?.write(`${cmd}\n`);

    const pod = (namespace: string, name: string, ip: string, generateName?: string) =>
      n.addPod({ namespace, name, ip, ...(generateName ? { generateName } : {}) });
    const webA = pod('shop', 'web-7d98456675-aaaaa', '10.244.8.2', 'web-7d98456675-');
    const webB = pod('shop', 'web-7d98456675-bbbbb', '10.244.8.3', 'web-7d98456675-');
    const api1 = pod('backend', 'api-6b7c8d9e0f-ccccc', '10.244.8.4', 'api-6b7c8d9e0f-');
    const api2 = pod('backend', 'api-6b7c8d9e0f-ddddd', '10.244.8.5', 'api-6b7c8d9e0f-');
    const db = pod('data', 'postgres-0', '10.244.8.6');
    // Reopened 5-tuples at a high rate: ab from a narrow port range to nginx (nginx closes
    // first, so each client port is reused at once and conntrack reopens its TIME_WAIT entry).
    const cache = pod('shop', 'cache-5f6d7c8b9a-eeeee', '10.244.8.7', 'cache-5f6d7c8b9a-');
    const loadgen = pod('load', 'loadgen-0', '10.244.8.8');
    const sink = n.addSink();
    const localIps = new Set([webA, webB, api1, api2, db, cache, loadgen].map((p) => p.ip));
    await startNginx(n, cache, dir);
    for (const s of [api1, api2]) await startTcpServer(n, s, s.ip, 8080);
    await startTcpServer(n, db, db.ip, 5432);
    await startUdpServer(n, db, db.ip, 5353);
    const VIP = '10.96.0.10';
    n.addServiceDnat(VIP, 80, api1.ip, 8080);
    const policy = new Policy(n);
    policy.deny({ to: api2, proto: 'tcp', port: 9999, name: 'default.deny-admin' });

    // Churn: one IP, a new owner every few seconds, alternating namespaces.
    const CHURN_IP = '10.244.8.50';
    const tenancies: Tenancy[] = [];
    let churnPod: SimPod | undefined;
    let churnSeq = 0;
    const endpointsFile = join(dir, 'endpoints.yaml');
    const newChurnPod = async () => {
      if (churnPod) {
        n.removePod(churnPod);
        tenancies.at(-1)!.toMs = Date.now();
      }
      churnSeq++;
      const ns = churnSeq % 2 ? 'team-a' : 'team-b';
      churnPod = pod(ns, `job-${churnSeq}`, CHURN_IP);
      localIps.add(CHURN_IP);
      tenancies.push({
        ip: CHURN_IP,
        namespace: ns,
        name: `job-${churnSeq}`,
        fromMs: Date.now(),
        toMs: Infinity,
      });
      writeFileSync(endpointsFile, n.endpointsYaml());
    };
    await newChurnPod();

    const spoolDir = join(dir, 'spool');
    const configFile = join(dir, 'flowtrail.yaml');
    writeFileSync(
      configFile,
      [
        'clusterName: soak',
        `nodeName: ${n.nodeName}`,
        `endpoints: { file: ${endpointsFile}, graceSeconds: 600 }`,
        `flowLogs: { flushIntervalSeconds: ${FLUSH_S}, aggregationKindForAllowed: 0, aggregationKindForDenied: 0 }`,
        'conntrack: { receiveBufferBytes: 131072, tickMs: 50 }',
        `sinks: { cloudwatch: { region: us-east-1, endpoint: '${proxyEndpoint}' } }`,
        `spool: { dir: ${spoolDir} }`,
        `metrics: { pushIntervalSeconds: ${FLUSH_S} }`,
        `http: { listen: '127.0.0.1:9099' }`,
        'log: { level: info }',
      ].join('\n'),
    );
    const truth = TruthLog.start(n, join(dir, 'conntrack-events.log'));
    await sleep(300);

    let agent: ChildProcess | undefined;
    let restarts = -1;
    const startAgent = async () => {
      // The heap flags of deploy/kubernetes/daemonset.yaml: RSS is measured as deployed.
      const child = n.spawn(
        [process.execPath, ...AGENT_NODE_FLAGS, CLI, 'agent', '--config', configFile],
        { env: { ...process.env, AWS_ACCESS_KEY_ID: 'soak', AWS_SECRET_ACCESS_KEY: 'soak' } },
      );
      await waitForMsg(child, 'agent started', 30_000);
      agent = child;
      restarts++;
    };
    await startAgent();

    const startedAtMs = Date.now();
    const deadline = startedAtMs + durationMs;
    const running = () => Date.now() < deadline;
    // Waits between scenario steps end at the deadline, so the run ends on time.
    const pause = async (ms: number) => {
      const until = Math.min(Date.now() + ms, deadline);
      while (Date.now() < until) await sleep(Math.min(1_000, until - Date.now()));
    };
    const samples: Sample[] = [];
    const faults: string[] = [];
    const downWindows: TimeWindow[] = [];
    let kills = 0;
    let storms = 0;
    // Reuse bursts, kills and storms take turns, so reopened tuples are checked rather
    // than excused by a kill or overrun window. An end time is +Infinity while it runs.
    let lastRestartAtMs = 0;
    let stormEndedAtMs = 0;
    let reuseEndedAtMs = 0;
    /** A flush interval and then some after `endedAtMs` (an overrun window lasts to the next flush). */
    const quietSince = (endedAtMs: number) => Date.now() - endedAtMs > (FLUSH_S + 2) * 1_000;
    const waitUntil = async (ok: () => boolean) => {
      while (!ok()) await sleep(250);
    };
    let deniedAttempts = 0;
    const quietly = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        log(`traffic: ${(err as Error).message}`);
      }
    };

    const sampler = (async () => {
      for (let i = 0; running(); i++) {
        const pid = agent?.pid;
        const s = pid ? sampleProcess(pid) : undefined;
        if (pid && s) {
          let scraped = {};
          if (i % 5 === 0) {
            try {
              scraped = scrapeGauges(
                n.exec(['curl', '-s', '-m', '2', 'http://127.0.0.1:9099/metrics']),
              );
            } catch {} // a restart in progress
          }
          samples.push({ atMs: Date.now(), pid, ...s, ...scraped });
        }
        await sleep(3_000);
      }
    })();

    const longLived = await Promise.all(
      [webA, webB].map((c) =>
        openTcpConnection(n, c, db.ip, 5432, {
          sendBytes: 2_000,
          receiveBytes: 30_000,
          holdOpenMs: durationMs + 60_000,
        }),
      ),
    );

    const steady = (async () => {
      let i = 0;
      while (running()) {
        i++;
        await quietly(() => tcpMany(n, webA, api1.ip, 8080, { count: 10, concurrency: 2 }));
        await quietly(() => udpSend(n, webB, db.ip, 5353, { count: 3, size: 100 + (i % 50) }));
        await quietly(() => ping(n, webA, api2.ip, 2));
        await quietly(() => tcpTransfer(n, webB, VIP, 80, { sendBytes: 300, receiveBytes: 5_000 }));
        await quietly(() => udpSend(n, webA, sink.ips[0]!, 53, { count: 1, size: 40 }));
        if (i % 3 === 0) {
          await quietly(() => tcpAttempt(n, webB, api2.ip, 9999, 500));
          deniedAttempts++;
        }
        await sleep(300);
      }
    })();

    const stormLoop = (async () => {
      await pause(10_000);
      while (running()) {
        // Not over a reuse burst: the overrun window (a flush interval) would excuse it.
        await waitUntil(() => quietSince(reuseEndedAtMs));
        log('overrun storm: 1,500 connections at concurrency 40');
        stormEndedAtMs = Number.POSITIVE_INFINITY;
        await quietly(() => tcpMany(n, webB, api2.ip, 8080, { count: 1_500, concurrency: 40 }));
        stormEndedAtMs = Date.now();
        storms++;
        await pause(Math.min(45_000, durationMs / 3));
      }
    })();

    let reuseBursts = 0;
    let reuseConnections = 0;
    const reuseLoop = (async () => {
      await pause(2_000);
      while (running()) {
        // A burst, its TIME_WAIT entries deleted right after (DESTROY with the final
        // counters), after a restart and clear of storms' overrun windows.
        await waitUntil(
          () => !running() || (quietSince(stormEndedAtMs) && Date.now() - lastRestartAtMs > 2_000),
        );
        if (!running()) break;
        // Each burst its own 256 ports (eight ranges in turn), so an overrun in one burst
        // excuses only its own tuples.
        reuseEndedAtMs = Number.POSITIVE_INFINITY;
        const first = 41_000 + (reuseBursts % 8) * 256;
        reuseClientPorts(loadgen, [first, first + 255]);
        log(`tuple reuse: 2,000 connections from ports ${first}-${first + 255}`);
        // In slices of 50 at full rate: a 2,000-connection ab at once overruns the soak's
        // deliberately small receive buffer, and an overrun excuses what it hides.
        for (let k = 0; k < 40 && running(); k++) {
          const ab = await runAb(loadgen, `http://${cache.ip}/`, 50, 1).catch(() => undefined);
          reuseConnections += ab?.completed ?? 0;
          await sleep(150);
        }
        try {
          n.exec(['conntrack', '-D', '-s', loadgen.ip]);
        } catch {} // none left
        reuseEndedAtMs = Date.now();
        reuseBursts++;
        await pause(Math.min(40_000, durationMs / 4));
      }
    })();

    let churns = 0;
    const churnLoop = (async () => {
      while (running()) {
        await pause(8_000);
        if (!running()) break;
        await newChurnPod();
        churns++;
        await startTcpServer(n, churnPod!, CHURN_IP, 7000).catch(() => undefined);
        // The file source polls every second; talk once the agent can know the owner.
        await sleep(2_500);
        for (let k = 0; k < 3 && running(); k++) {
          const p = churnPod!;
          await quietly(() =>
            tcpTransfer(n, p, api1.ip, 8080, { sendBytes: 100 + k, receiveBytes: 700 }),
          );
          await quietly(() =>
            tcpTransfer(n, webA, p.ip, 7000, { sendBytes: 50, receiveBytes: 50 }),
          );
        }
      }
    })();

    const faultLoop = (async () => {
      const menu = ['fail503 1', 'throttle 0.3', 'reset 0.3', 'down'];
      await pause(15_000);
      while (running()) {
        const f = menu[Math.floor(random() * menu.length)]!;
        faults.push(f);
        log(`CloudWatch fault: ${f}`);
        proxy(f);
        await sleep(8_000);
        proxy(f === 'down' ? 'up' : 'pass');
        if (f === 'down') proxy('pass');
        await pause(Math.min(25_000, durationMs / 4));
      }
    })();

    const killLoop = (async () => {
      const planned = o.kills ?? 12;
      if (planned <= 0) return;
      const every = Math.max(25_000, durationMs / planned);
      await pause(every * (0.5 + random() * 0.5));
      while (running()) {
        // A kill window starts a flush before the kill: not over a reuse burst.
        await waitUntil(() => quietSince(reuseEndedAtMs));
        const victim = agent!;
        const killAt = Date.now();
        log('kill -9 of the agent');
        victim.kill('SIGKILL');
        await new Promise((r) => victim.once('exit', r));
        kills++;
        await sleep(500 + random() * 2_000);
        await startAgent();
        lastRestartAtMs = Date.now();
        downWindows.push({ fromMs: killAt - FLUSH_S * 1_000 - 1_000, toMs: Date.now() + 1_000 });
        await pause(every * (0.5 + random()));
      }
    })();

    await Promise.all([steady, stormLoop, reuseLoop, churnLoop, faultLoop, killLoop, sampler]);
    proxy('up');
    proxy('pass');
    log('stopping: final flush and delivery');
    // Quiet, then the agent's last flush; every TIME_WAIT entry is still in the table.
    await sleep(2_000);
    await stopProcess(agent!, 30_000);
    const endedAtMs = Date.now();
    await truth.stop();
    const connections = truth.connections();
    for (const c of longLived) void c.done.catch(() => undefined);

    const group = 'flowtrail-flowlogs-soak';
    const lines = readLogEvents(moto.endpoint, n.netns, group, `${n.nodeName}_Flowlogs`).map(
      (e) => e.message,
    );
    const { unique, duplicates } = dedupe(lines);
    const records = unique.map((l) => decodeRecord(l));
    const lossLines = readLogEvents(moto.endpoint, n.netns, group, `${n.nodeName}_Events`).map(
      (e) =>
        JSON.parse(e.message) as {
          kind: string;
          count: number;
          windowStartMs: number;
          windowEndMs: number;
        },
    );
    const lost: Record<string, number> = {};
    for (const l of lossLines) lost[l.kind] = (lost[l.kind] ?? 0) + l.count;
    const overrunWindows = lossLines
      .filter((l) => l.kind === 'ConntrackOverrun')
      .map((l) => ({ fromMs: l.windowStartMs - 1_000, toMs: l.windowEndMs + 1_000 }));
    const check = checkSoak({
      truth: connections,
      records,
      localIps,
      downWindows,
      overrunWindows,
      tenancies,
    });
    const warm = samples.filter((s) => s.atMs >= startedAtMs + durationMs / 4);
    const result: SoakResult = {
      minutes: o.minutes,
      startedAtMs,
      endedAtMs,
      kills,
      restarts,
      faults,
      storms,
      churns,
      reuseBursts,
      reuseConnections,
      deniedAttempts,
      records: records.length,
      duplicates,
      lost,
      lossEvents: lossLines,
      check,
      samples,
      rssMaxMiB: Math.max(0, ...samples.map((s) => s.rssMiB)),
      rssSlopeMiBPerHour: slopePerHour(warm.map((s) => [s.atMs, s.rssMiB])),
      fdSlopePerHour: slopePerHour(warm.map((s) => [s.atMs, s.fds])),
      longestRun: longestRun(samples),
      downWindows,
      truthFailure:
        truth.failure ??
        (/ENOBUFS/.test(truth.stderr)
          ? 'conntrack -E hit ENOBUFS (the 2 s listings cover it)'
          : undefined),
      pass:
        check.mismatched === 0 &&
        check.misattributed === 0 &&
        check.unexplainedGroups === 0 &&
        check.exact > 0,
    };
    return result;
  } finally {
    await moto?.stop();
    await node?.destroy();
    // FLOWTRAIL_SOAK_KEEP=1 keeps the agent's spool, config and the kernel's event log.
    if (process.env.FLOWTRAIL_SOAK_KEEP === '1') log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
