/**
 * `flowtrail doctor` on a simulated node: everything in place gives exit 0
 * and no ✗; then each precondition is broken alone and exactly its check
 * fails, with what was found and the fix, while the others keep their status.
 * CloudWatch is moto in the node namespace; "access denied" comes from the
 * fault proxy (scripts/fault-proxy.mjs) answering AccessDeniedException.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../src/doctor/run.js';
import { type Moto, readLogEvents, startMoto } from '../../src/sim/moto.js';
import { inNs, stopProcess } from '../../src/sim/netns.js';
import { Policy } from '../../src/sim/policy.js';
import { SimNode } from '../../src/sim/simnode.js';
import { skipKdrops, skipKernel, skipMoto } from '../harness/env.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const PROXY = new URL('../../scripts/fault-proxy.mjs', import.meta.url).pathname;

describe.skipIf(skipKernel || skipMoto)('flowtrail doctor', () => {
  let node: SimNode;
  let bare: SimNode;
  let moto: Moto;
  let proxy: ChildProcess;
  let proxyEndpoint = '';
  const dir = mkdtempSync(join(tmpdir(), 'ft-doctor-'));
  const env = { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };

  function config(
    name: string,
    extra: { endpoint?: string; spool?: string; denies?: string } = {},
  ): string {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(
      path,
      [
        'clusterName: ci',
        'nodeName: ip-10-0-9-1',
        `sinks: { cloudwatch: { region: us-east-1, endpoint: '${extra.endpoint ?? moto.endpoint}' } }`,
        `spool: { dir: ${extra.spool ?? join(dir, 'spool')}, maxBytes: 1048576 }`,
        ...(extra.denies ? [`denies: { source: ${extra.denies} }`] : []),
      ].join('\n'),
    );
    return path;
  }

  function doctor(
    on: SimNode,
    cfg: string,
    ...args: string[]
  ): { code: number | null; report: DoctorReport; text: string } {
    const argv = inNs(on.netns, [
      process.execPath,
      CLI,
      'doctor',
      '--config',
      cfg,
      '--json',
      ...args,
    ]);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env, timeout: 60_000 });
    let report: DoctorReport;
    try {
      report = JSON.parse(r.stdout) as DoctorReport;
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
    }
    return { code: r.status, report, text: r.stdout };
  }

  const statusOf = (r: DoctorReport) => Object.fromEntries(r.checks.map((c) => [c.id, c.status]));
  const check = (r: DoctorReport, id: string) => r.checks.find((c) => c.id === id)!;
  let baseline: Record<string, string>;

  /** Only `ids` changed status (to fail) against the all-good run. */
  function onlyFailed(r: DoctorReport, ids: string[]): void {
    const now = statusOf(r);
    // Checks that depend on a failed one are not run (e.g. spool.space after spool.writable).
    const changed = Object.keys(baseline).filter((k) => k in now && now[k] !== baseline[k]);
    expect(changed.sort()).toEqual([...ids].sort());
    for (const id of ids) expect(now[id]).toBe('fail');
  }

  beforeAll(async () => {
    node = await SimNode.create({ nodeName: 'ip-10-0-9-1' });
    bare = await SimNode.create({ nodeName: 'ip-10-0-9-2' });
    moto = await startMoto({ netns: node.netns });
    const server = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.9.3' });
    const policy = new Policy(node);
    policy.allow({ to: server, proto: 'tcp', port: 8080, name: 'default.allow-api' });
    policy.defaultDeny();
    // The log group exists (as `flowtrail setup` would leave it).
    const create = inNs(node.netns, [
      process.execPath,
      '--input-type=module',
      '-e',
      `import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
       await new CloudWatchLogsClient({ region: 'us-east-1', endpoint: '${moto.endpoint}' })
         .send(new CreateLogGroupCommand({ logGroupName: 'flowtrail-flowlogs-ci' }));`,
    ]);
    const made = spawnSync(create[0]!, create.slice(1), {
      encoding: 'utf8',
      env,
      cwd: process.cwd(),
    });
    if (made.status !== 0) throw new Error(made.stderr);
    proxy = node.spawn([process.execPath, PROXY, moto.endpoint]);
    const first = await createInterface({ input: proxy.stdout! })[Symbol.asyncIterator]().next();
    proxyEndpoint = String(JSON.parse(String(first.value)).endpoint);
    proxy.stdin?.write('deny 1\n');
  }, 60_000);

  afterAll(async () => {
    if (proxy) await stopProcess(proxy);
    await moto?.stop();
    await node?.destroy();
    await bare?.destroy();
  });

  it('everything in place: exit 0, no ✗, and --write-test writes to the events stream', () => {
    const r = doctor(node, config('good'), '--write-test');
    expect(r.report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.report.ok).toBe(true);
    const written = statusOf(r.report);
    for (const id of [
      'kernel.ctnetlink',
      'kernel.nflog',
      'kernel.acct',
      'kernel.events',
      'policy.nflog-rules',
      'policy.prefixes',
      'aws.credentials',
      'aws.log-group',
      'aws.write',
      'aws.metrics',
      'spool.writable',
      'spool.space',
    ]) {
      expect({ id, status: written[id] }).toEqual({ id, status: 'ok' });
    }
    const events = readLogEvents(
      moto.endpoint,
      node.netns,
      'flowtrail-flowlogs-ci',
      'ip-10-0-9-1_Events',
    );
    expect(events.map((e) => JSON.parse(e.message).event)).toEqual(['doctor']);
    // The reference for the tests below: the same run without --write-test.
    const plain = doctor(node, config('good'));
    expect(plain.code).toBe(0);
    baseline = statusOf(plain.report);
    expect([baseline['aws.write'], baseline['aws.metrics']]).toEqual(['skip', 'skip']);
    expect(check(r.report, 'policy.nflog-rules').found).toMatch(
      /rules \(group 1: \d+, group 2: \d+\)/,
    );
    // The human form marks each check.
    const argv = inNs(node.netns, [process.execPath, CLI, 'doctor', '--config', config('good')]);
    const human = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env });
    expect(human.stdout).toMatch(/^✓ conntrack events and dumps/m);
    expect(human.stdout).toMatch(/ready: every required check passed/);
  });

  it('no NFLOG rules for the groups, NFLOG the only deny source: denied traffic will not be seen, and why', () => {
    const r = doctor(bare, config('bare-nflog', { denies: 'nflog' }));
    expect(r.code).toBe(1);
    const c = check(r.report, 'policy.nflog-rules');
    expect(c.status).toBe('fail');
    expect(c.found).toMatch(/denied traffic will not be seen/);
    expect(c.fix).toMatch(/does not log through NFLOG/);
    expect(check(r.report, 'denies.source').found).toMatch(/^nflog \(denies.source: nflog\)/);
  });

  it.skipIf(skipKdrops)(
    'no NFLOG rules, kernel drop events on (the default here): a warning, and the deny source says both',
    () => {
      const r = doctor(bare, config('bare'));
      const c = check(r.report, 'policy.nflog-rules');
      expect(c.status).toBe('warn');
      expect(c.found).toMatch(/denies come from kernel drop events only/);
      for (const id of [
        'kdrops.addon',
        'kdrops.btf',
        'kdrops.tracepoint',
        'kdrops.capabilities',
        'kdrops.load',
      ]) {
        expect({ id, status: check(r.report, id).status }).toEqual({ id, status: 'ok' });
      }
      expect(check(r.report, 'denies.source')).toMatchObject({
        status: 'ok',
        found: expect.stringMatching(/^both: /),
      });
    },
  );

  it.skipIf(skipKdrops)(
    'denies.source kernel without CAP_BPF and CAP_PERFMON: the capability check fails and names the fix',
    () => {
      const argv = inNs(bare.netns, [
        'capsh',
        '--drop=cap_bpf,cap_perfmon,cap_sys_admin',
        '--',
        '-c',
        `'${process.execPath}' '${CLI}' doctor --json --config '${config('bare-kernel', { denies: 'kernel' })}'`,
      ]);
      const p = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env });
      const report = JSON.parse(p.stdout) as DoctorReport;
      expect(p.status).toBe(1);
      const caps = check(report, 'kdrops.capabilities');
      expect(caps).toMatchObject({ status: 'fail', found: 'missing CAP_BPF and CAP_PERFMON' });
      expect(caps.fix).toMatch(/components\/kernel-drops/);
      expect(check(report, 'denies.source')).toMatchObject({ status: 'fail' });
      expect(check(report, 'denies.source').found).toMatch(/the agent will not start/);
    },
  );

  it('NFLOG group already bound by another process', async () => {
    const holder = node.spawn([
      process.execPath,
      CLI,
      'capture',
      '--no-conntrack',
      '--nflog-groups',
      '1',
    ]);
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      const r = doctor(node, config('good'));
      expect(r.code).toBe(1);
      onlyFailed(r.report, ['kernel.nflog']);
      const found = check(r.report, 'kernel.nflog').found;
      expect(found).toMatch(/group 1 is already bound by another process .*\((EBUSY|EPERM)\)/);
      // The holder, found through /proc: its pid and command line.
      expect(found).toContain(`pid ${holder.pid} (`);
      expect(found).toContain('flowtrail.js capture --no-conntrack');
    } finally {
      await stopProcess(holder);
    }
  });

  it('NFLOG group held by a running flowtrail agent: a warning, not a failure', async () => {
    const agent = node.spawn(
      [
        process.execPath,
        CLI,
        'agent',
        '--config',
        config('agent', { spool: join(dir, 'agent-spool') }),
      ],
      { env },
    );
    try {
      await new Promise((r) => setTimeout(r, 2_500));
      const r = doctor(node, config('good'));
      const c = check(r.report, 'kernel.nflog');
      expect(c.status).toBe('warn');
      expect(c.found).toContain(`held by a running flowtrail agent: pid ${agent.pid} (`);
      expect(statusOf(r.report)).toMatchObject({ ...baseline, 'kernel.nflog': 'warn' });
    } finally {
      await stopProcess(agent);
    }
  });

  it('conntrack accounting off: counters would read 0', () => {
    node.exec(['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_acct=0']);
    try {
      const r = doctor(node, config('good'));
      expect(r.code).toBe(1);
      onlyFailed(r.report, ['kernel.acct']);
      expect(check(r.report, 'kernel.acct').fix).toMatch(
        /sysctl -w net.netfilter.nf_conntrack_acct=1/,
      );
    } finally {
      node.exec(['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_acct=1']);
    }
  });

  it('unwritable spool directory', () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = doctor(node, config('spool', { spool: join(file, 'spool') }));
    expect(r.code).toBe(1);
    onlyFailed(r.report, ['spool.writable']);
    expect(check(r.report, 'spool.writable').found).toMatch(/ENOTDIR/);
  });

  it('CloudWatch unreachable (moto down): names the endpoint and the errno', () => {
    mkdirSync(join(dir, 'spool'), { recursive: true });
    const r = doctor(node, config('down', { endpoint: 'http://127.0.0.1:9' }));
    expect(r.code).toBe(1);
    const c = check(r.report, 'aws.log-group');
    expect(c.status).toBe('fail');
    expect(c.found).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
  });

  it('access denied (fault proxy): names the IAM action to allow', () => {
    const r = doctor(node, config('denied', { endpoint: proxyEndpoint }));
    expect(r.code).toBe(1);
    const c = check(r.report, 'aws.log-group');
    expect(c.status).toBe('fail');
    expect(c.found).toMatch(/logs:DescribeLogGroups denied \(AccessDeniedException\)/);
    expect(c.fix).toMatch(/deploy\/aws/);
  });
});
