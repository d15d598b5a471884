/**
 * `flowtrail demo`: the stars scenario on a simulated node, end to end.
 *
 * Phases: build the node (namespaces, veth pods, real servers) and a local
 * CloudWatch (moto_server); start the real agent in the node namespace;
 * apply a default deny and let the pods try to talk; apply the allow
 * policies and watch traffic flow while client → backend stays denied and
 * the frontend reaches a public-looking address; stop, read the records back
 * from CloudWatch and answer the audit questions. Everything made is removed
 * at the end, on Ctrl-C and on error.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createStyle, type Style } from '../cli/output.js';
import { decodeRecord } from '../format/codec.js';
import type { FlowRecord } from '../format/record.js';
import {
  crossNamespaceIngress,
  deniedFlows,
  egressToInternet,
  type PairRow,
  topTalkers,
  totals,
} from '../report/analyze.js';
import { pairsTable } from '../report/text.js';
import {
  type Moto,
  motoAvailable,
  readFromEmulator,
  readLogEvents,
  startMoto,
} from '../sim/moto.js';
import { stopProcess } from '../sim/netns.js';
import { SimNode, type SimPod } from '../sim/simnode.js';
import { startPeriodicTcp, startTcpServer } from '../sim/traffic.js';
import { createDataplane, type DataplaneName, type DemoDataplane } from './dataplane.js';
import { INTERNET_IP, INTERNET_PORT, STARS_PODS, TALKS } from './stars.js';

export interface DemoOptions {
  durationSeconds: number;
  flushSeconds: number;
  keep: boolean;
  cloudwatch: 'emulator' | 'aws' | 'none';
  region?: string;
  workDir: string;
  json: boolean;
  out: NodeJS.WritableStream;
  /** Where policy is enforced: iptables with NFLOG (default) or TC eBPF programs (kernel drop events). */
  dataplane?: DataplaneName;
  /** Colours and tables for `out` (default: none). */
  style?: Style;
  /** Aborted: stop as on Ctrl-C (e.g. the reader of `out` went away). */
  stop?: AbortSignal;
}

export interface DemoResult {
  logGroupName: string;
  logStreamName: string;
  records: FlowRecord[];
  source: 'cloudwatch' | 'file';
  dropCounters: { prefix: string; packets: number; bytes: number }[];
  /** Sum of the DeniedPackets metric read back from CloudWatch (emulator runs). */
  deniedPacketsMetric: number | undefined;
  /** Lowest NodeHealthy value pushed during the run. */
  nodeHealthy: number | undefined;
  phaseBoundary: number;
  /** The simulated node's namespace names start with this (all removed at the end). */
  namespacePrefix: string;
  dataplane: DataplaneName;
}

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DemoError extends Error {}

function missingTools(): string[] {
  const need = ['ip', 'iptables', 'conntrack', 'ping'];
  return need.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

function table(style: Style, rows: PairRow[], empty: string): string {
  return rows.length === 0 ? style.c.dim(`  ${empty}`) : pairsTable(rows, 12, style.table);
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const style = o.style ?? createStyle(false);
  const pc = style.c;
  const say = (s: string) => {
    if (!o.json) o.out.write(`${s}\n`);
  };
  if (process.getuid?.() !== 0) {
    throw new DemoError(
      'flowtrail demo builds network namespaces and iptables rules: run it as root (sudo npx flowtrail demo)',
    );
  }
  const missing = missingTools();
  if (missing.length > 0) {
    throw new DemoError(
      `flowtrail demo needs ${missing.join(', ')}: run scripts/host-deps.sh (Debian: apt-get install iproute2 iptables conntrack iputils-ping)`,
    );
  }
  let cloudwatch = o.cloudwatch;
  if (cloudwatch === 'emulator' && !motoAvailable()) {
    say(
      pc.yellow(
        '! moto_server is not installed: records go to a local file only (pip install "moto[server]" for the CloudWatch emulator)',
      ),
    );
    cloudwatch = 'none';
  }

  const demoStart = Date.now();
  rmSync(o.workDir, { recursive: true, force: true });
  mkdirSync(o.workDir, { recursive: true });
  const file = join(o.workDir, 'flowlogs.log');
  const clusterName = 'stars-demo';
  const nodeName = 'demo-node-1';
  const logGroupName = `flowtrail-flowlogs-${clusterName}`;
  const logStreamName = `${nodeName}_Flowlogs`;

  let node: SimNode | undefined;
  let moto: Moto | undefined;
  let agent: ChildProcess | undefined;
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  o.stop?.addEventListener('abort', onSigint);
  /** Waits `ms`, or less when interrupted; true when interrupted. */
  const wait = async (ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!interrupted && Date.now() < end) await sleep(Math.min(250, end - Date.now()));
    return interrupted;
  };

  try {
    say(pc.bold('▶ 1/5 building a simulated node with the stars application'));
    node = await SimNode.create({ nodeName, timeWaitSeconds: 2, hostIps: ['10.0.0.1'] });
    const pods = new Map<string, SimPod>();
    for (const p of STARS_PODS) pods.set(p.key, node.addPod(p));
    const sink = node.addSink([INTERNET_IP]);
    for (const p of STARS_PODS)
      if (p.serve) await startTcpServer(node, pods.get(p.key)!, p.ip, p.serve);
    await startTcpServer(node, sink, INTERNET_IP, INTERNET_PORT);
    say(
      `  node ${nodeName}: ${STARS_PODS.map((p) => `${p.namespace}/${p.name.split('-')[0]} ${p.ip}`).join(', ')}; internet at ${INTERNET_IP}`,
    );

    const dataplane = o.dataplane ?? 'iptables';
    const policy = createDataplane(dataplane, node, [
      ...pods.values(),
      { ip: INTERNET_IP, hostVeth: `${node.base}vs`, name: 'internet' },
    ]);
    if (dataplane === 'ebpf') {
      say(
        '  data plane: TC eBPF classifiers on every veth (drops seen through kernel drop events)',
      );
    }
    say(pc.bold('▶ 2/5 starting the CloudWatch emulator and the flowtrail agent'));
    let endpoint: string | undefined;
    if (cloudwatch === 'emulator') {
      moto = await startMoto({ netns: node.netns });
      endpoint = moto.endpoint;
      say(`  CloudWatch emulator (moto_server) at ${endpoint} inside the node namespace`);
    }
    writeFileSync(join(o.workDir, 'endpoints.yaml'), node.endpointsYaml());
    const cwLine =
      cloudwatch === 'none'
        ? ''
        : `  cloudwatch: { region: ${o.region ?? 'us-east-1'}${endpoint ? `, endpoint: '${endpoint}'` : ''}, retentionDays: 1 }\n`;
    writeFileSync(
      join(o.workDir, 'flowtrail.yaml'),
      `clusterName: ${clusterName}\nnodeName: ${nodeName}\nendpoints: { file: ${join(o.workDir, 'endpoints.yaml')} }\n` +
        `flowLogs: { flushIntervalSeconds: ${o.flushSeconds}, aggregationKindForAllowed: 1, aggregationKindForDenied: 1, includeLabels: true }\n` +
        `sinks:\n${cwLine}  file: { path: ${file} }\nspool: { dir: ${join(o.workDir, 'spool')} }\nmetrics: { pushIntervalSeconds: ${o.flushSeconds} }\nhttp: { listen: '' }\n`,
    );
    const env = { ...process.env };
    if (cloudwatch === 'emulator')
      Object.assign(env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
    agent = node.spawn(
      [process.execPath, CLI, 'agent', '--config', join(o.workDir, 'flowtrail.yaml')],
      { env },
    );
    let agentLog = '';
    agent.stderr!.on('data', (c: Buffer) => {
      agentLog = (agentLog + c.toString()).slice(-20_000);
    });
    const started = Date.now();
    while (!/agent started/.test(agentLog)) {
      if (agent.exitCode !== null || Date.now() - started > 20_000) {
        throw new DemoError(`the agent did not start:\n${agentLog}`);
      }
      await sleep(100);
    }
    say(`  agent running in the node namespace, flushing every ${o.flushSeconds} s`);

    say(pc.bold('▶ 3/5 default deny: every pod tries its peers, policy drops them'));
    policy.defaultDeny();
    const target = (key: string) => (key === 'internet' ? INTERNET_IP : pods.get(key)!.ip);
    const clients = TALKS.map((t) =>
      startPeriodicTcp(node!, pods.get(t.from)!, target(t.to), t.port, 1_000),
    );
    const denyPhase = Math.max(o.flushSeconds * 2, Math.floor(o.durationSeconds / 3)) * 1000;
    await liveStatus(wait, denyPhase, file, say, policy, style);
    const phaseBoundary = Math.floor(Date.now() / 1000);

    say(
      pc.bold(
        '▶ 4/5 allow policies: ui → frontend, backend; client → frontend; frontend → backend:6379; frontend → internet:443',
      ),
    );
    for (const t of TALKS) {
      if (!t.allowedBy) continue;
      policy.allow({
        from: pods.get(t.from)!.ip,
        to: target(t.to),
        port: t.port,
        name: t.allowedBy,
        egress: t.to === 'internet',
      });
    }
    say(`  still denied: client → backend:6379`);
    await liveStatus(
      wait,
      Math.max(o.flushSeconds * 2000, o.durationSeconds * 1000 - denyPhase),
      file,
      say,
      policy,
      style,
    );
    if (o.keep && !interrupted) {
      say(pc.bold('  --keep: running until Ctrl-C'));
      while (!interrupted) await liveStatus(wait, o.flushSeconds * 1000, file, say, policy, style);
    }

    say(
      pc.bold(
        '▶ 5/5 stopping the traffic and the agent (it flushes the last interval), reading CloudWatch back',
      ),
    );
    // Quiet first, so the kernel's counters and the agent's last flush see the same packets.
    await Promise.all(clients.map((c) => stopProcess(c, 2_000)));
    await sleep(500);
    const dropCounters = policy.counters();
    await stopProcess(agent, 20_000);
    agent = undefined;
    let records: FlowRecord[];
    let source: 'cloudwatch' | 'file' = 'file';
    let deniedPacketsMetric: number | undefined;
    let nodeHealthy: number | undefined;
    if (cloudwatch === 'emulator' && moto) {
      records = readLogEvents(moto.endpoint, node.netns, logGroupName, logStreamName).map((e) =>
        decodeRecord(e.message),
      );
      source = 'cloudwatch';
      const range = [String(demoStart - 120_000), String(Date.now() + 120_000)];
      const points = readFromEmulator(moto.endpoint, node.netns, [
        'metric',
        'flowtrail',
        'DeniedPackets',
        `ClusterName=${clusterName},NodeName=${nodeName}`,
        ...range,
      ]) as { Sum?: number }[];
      deniedPacketsMetric = points.reduce((n, p) => n + (p.Sum ?? 0), 0);
      const health = readFromEmulator(moto.endpoint, node.netns, [
        'metric',
        'flowtrail',
        'NodeHealthy',
        `ClusterName=${clusterName},NodeName=${nodeName}`,
        ...range,
      ]) as { Minimum?: number; Maximum?: number }[];
      nodeHealthy = health.length > 0 ? Math.min(...health.map((p) => p.Minimum ?? 0)) : undefined;
    } else {
      records = readRecords(file);
    }
    const result: DemoResult = {
      logGroupName,
      logStreamName,
      records,
      source,
      dropCounters,
      phaseBoundary,
      deniedPacketsMetric,
      nodeHealthy,
      namespacePrefix: node.base,
      dataplane,
    };
    if (o.json) {
      o.out.write(`${JSON.stringify({ ...result, totals: totals(records) })}\n`);
    } else {
      printAnswers(result, say, file, style);
    }
    return result;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    o.stop?.removeEventListener('abort', onSigint);
    if (agent) await stopProcess(agent, 5_000);
    await moto?.stop();
    await node?.destroy();
  }
}

function readRecords(file: string): FlowRecord[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => decodeRecord(l));
  } catch {
    return [];
  }
}

async function liveStatus(
  wait: (ms: number) => Promise<boolean>,
  ms: number,
  file: string,
  say: (s: string) => void,
  policy: DemoDataplane,
  { c: pc }: Style,
): Promise<void> {
  const end = Date.now() + ms;
  let shown = 0;
  while (Date.now() < end) {
    // Interrupted (Ctrl-C, a closed stdout): on to the clean-up at once.
    if (await wait(Math.min(3_000, end - Date.now()))) break;
    const records = readRecords(file);
    const t = totals(records);
    const dropped = policy.dropped();
    say(
      pc.dim(
        `  records written ${t.records} (allow ${t.allowRecords}, deny ${t.denyRecords}); denied packets in records ${t.deniedPackets}, ${policy.counterLabel} ${dropped.packets}`,
      ),
    );
    const recent = records.slice(shown).slice(-4);
    shown = records.length;
    for (const r of recent) {
      const arrow = r.action === 'deny' ? pc.red('✗') : pc.green('✓');
      say(
        pc.dim(
          `    ${arrow} ${r.srcNamespace}/${r.srcName} → ${r.dstType === 'net' ? `net/${r.dstName}` : `${r.dstNamespace}/${r.dstName}`}:${r.dstPort} ${r.action} ${r.packetsIn + r.packetsOut} pkts (${r.reporter})`,
        ),
      );
    }
    if (Date.now() >= end) break;
  }
}

function printAnswers(r: DemoResult, say: (s: string) => void, file: string, style: Style): void {
  const pc = style.c;
  const t = totals(r.records);
  say('');
  say(
    pc.bold(
      `Audit answers from ${r.records.length} records read back from ${r.source === 'cloudwatch' ? `CloudWatch (${r.logGroupName} / ${r.logStreamName})` : file}`,
    ),
  );
  say(pc.bold('\nWhich flows did policy deny, and between whom?'));
  say(table(style, deniedFlows(r.records), 'none'));
  say(pc.bold('\nWhich pods sent traffic to the public internet?'));
  say(table(style, egressToInternet(r.records), 'none'));
  say(pc.bold('\nWho connected into namespace stars from another namespace?'));
  say(table(style, crossNamespaceIngress(r.records, 'stars'), 'none'));
  say(pc.bold('\nTop talkers by bytes'));
  say(table(style, topTalkers(r.records, 8), 'none'));
  const drop = r.dropCounters.reduce((n, c) => n + c.packets, 0);
  say(
    `\nDenied packets: ${t.deniedPackets} in the records; the ${r.dataplane === 'ebpf' ? "TC programs' drop counters" : "kernel's DROP counters"} say ${drop} ${t.deniedPackets === drop ? pc.green('(equal)') : pc.red('(differ)')}`,
  );
  if (r.deniedPacketsMetric !== undefined) {
    say(
      `CloudWatch metrics: DeniedPackets summed to ${r.deniedPacketsMetric} ${r.deniedPacketsMetric === drop ? pc.green('(equal to DROP)') : pc.red('(differs from DROP)')}; NodeHealthy stayed ${r.nodeHealthy === 1 ? pc.green('1') : pc.red(String(r.nodeHealthy))}`,
    );
  }
  say(
    `Records: ${t.records} (${t.allowRecords} allow, ${t.denyRecords} deny) between ${t.firstTime} and ${t.lastTime}.`,
  );
  say(`The local copy of the records: ${resolve(file)}`);
}
