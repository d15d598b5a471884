/**
 * The CLI as people use it, through the real binary (bin/flowtrail.js): a
 * reader that goes away (`| head`), colour only on a terminal, one flag
 * vocabulary with the old names still accepted, the exit codes in every
 * --help, a setup dry run without AWS, what estimate says about a short
 * sample, and logs whose level is a word.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Estimate } from '../../src/estimate/estimate.js';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { openTcpConnection, startTcpServer, tcpTransfer } from '../../src/sim/traffic.js';
import { CLI, type CliResult, runCli, runCliOnTerminal } from '../harness/cli.js';
import { skipKernel } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

const COMMANDS = ['agent', 'capture', 'setup', 'report', 'query', 'demo', 'doctor', 'estimate'];
const ESC = '\x1b[';
const dir = mkdtempSync(join(tmpdir(), 'ft-cli-'));

/** A crash on a closed pipe prints `Error: write EPIPE` and a stack: none of that. */
function quiet(r: CliResult): void {
  expect(r.stderr).not.toMatch(/EPIPE|ERR_STREAM|Unhandled|\n\s+at /);
  expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
}

const END = Math.floor(Date.now() / 1000) - 120;
function rec(i: number, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    startTime: END - 300,
    endTime: END,
    srcType: 'wep',
    srcNamespace: 'client',
    srcName: `client-${i}`,
    srcLabels: '-',
    dstType: 'wep',
    dstNamespace: 'prod',
    dstName: 'api-*',
    dstLabels: '-',
    srcIP: '-',
    dstIP: '-',
    proto: 6,
    srcPort: '-',
    dstPort: 443,
    numFlows: 1,
    numFlowsStarted: 1,
    numFlowsCompleted: 1,
    reporter: 'dst',
    packetsIn: 10,
    packetsOut: 8,
    bytesIn: 1000,
    bytesOut: 800,
    action: i % 2 === 0 ? 'allow' : 'deny',
    ...over,
  };
}

/** A small record file, and one whose CSV is far beyond a pipe's 64 KiB buffer. */
const small = join(dir, 'small.log');
const big = join(dir, 'big.log');
writeFileSync(small, `${[0, 1, 2, 3].map((i) => encodeRecord(rec(i))).join('\n')}\n`);
writeFileSync(
  big,
  `${Array.from({ length: 4000 }, (_, i) => encodeRecord(rec(i, { dstPort: 1000 + i }))).join('\n')}\n`,
);

describe('a closed pipe ends every command quietly (exit 0, no stack trace)', () => {
  it('flowtrail [COMMAND] --help into a closed pipe, for every command', async () => {
    // Side by side: each is its own process, and node's start-up is most of the time.
    const runs = await Promise.all(
      [...COMMANDS, ''].map((cmd) =>
        runCli([...(cmd ? [cmd] : []), '--help'], {}, { closeStdout: 'at-once' }),
      ),
    );
    for (const r of runs) quiet(r);
  });

  for (const format of [[], ['--csv'], ['--json']]) {
    it(`report ${format.join(' ') || '(table)'} into a closed pipe`, async () => {
      quiet(await runCli(['report', '-f', big, ...format], {}, { closeStdout: 'at-once' }));
    });
  }

  it('report --csv | head -5, in a real shell pipeline', () => {
    // What a user types; pipefail makes the pipeline's status flowtrail's.
    const errFile = join(dir, 'head.err');
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; "${process.execPath}" "${CLI}" report --csv -f "${big}" 2>"${errFile}" | head -5`,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(5);
    expect(readFileSync(errFile, 'utf8')).toBe('');
    expect(r.status).toBe(0);
  });

  it('report after the first line: the reader leaves mid-output', async () => {
    quiet(await runCli(['report', '--csv', '-f', big], {}, { closeStdout: 'after-first-line' }));
  });

  it('query --list, estimate and setup --dry-run into a closed pipe', async () => {
    quiet(await runCli(['query', '--list'], {}, { closeStdout: 'at-once' }));
    quiet(await runCli(['estimate', '-f', big], {}, { closeStdout: 'at-once' }));
    quiet(await runCli(['estimate', '-f', big, '--json'], {}, { closeStdout: 'at-once' }));
    quiet(
      await runCli(
        [
          'setup',
          '--dry-run',
          '--cluster',
          'c',
          '--region',
          'us-east-1',
          '--endpoint',
          'http://127.0.0.1:1',
        ],
        {},
        { closeStdout: 'at-once' },
      ),
    );
    quiet(
      await runCli(
        ['agent', '--cluster', 'c', '--node', 'n', '--print-config'],
        {},
        { closeStdout: 'at-once' },
      ),
    );
  });
});

describe('colour: only on a terminal, never with NO_COLOR or --no-color', () => {
  const report = ['report', '-f', small];

  it('a pipe gets no ANSI codes, also with NO_COLOR=1 and under CI=true', async () => {
    for (const env of [{}, { NO_COLOR: '1' }, { CI: 'true' }] as Record<string, string>[]) {
      const r = await runCli(report, env);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('source');
      expect(r.stdout).not.toContain(ESC);
    }
    const e = await runCli(['estimate', '-f', small]);
    expect(e.stdout).toContain('aggregation');
    expect(e.stdout).not.toContain(ESC);
  });

  it('FORCE_COLOR colours a pipe; NO_COLOR and --no-color (before or after the command) win over it', async () => {
    expect((await runCli(report, { FORCE_COLOR: '1' })).stdout).toContain(ESC);
    const cases = [
      [report, { FORCE_COLOR: '1', NO_COLOR: '1' }],
      [[...report, '--no-color'], { FORCE_COLOR: '1' }],
      [['--no-color', ...report], { FORCE_COLOR: '1' }],
      [report, { FORCE_COLOR: '0' }],
    ] as const;
    const runs = await Promise.all(cases.map(([args, env]) => runCli([...args], env)));
    for (const r of runs) {
      expect(r.status).toBe(0);
      expect(r.stdout).not.toContain(ESC);
    }
  });

  it('a terminal gets colour, unless NO_COLOR, --no-color or TERM=dumb', async () => {
    const tty = await runCliOnTerminal(report);
    expect(tty.status).toBe(0);
    expect(tty.stdout).toContain('Which flows did policy deny');
    expect(tty.stdout).toContain(ESC);
    const cases = [
      [report, { NO_COLOR: '1' }],
      [[...report, '--no-color'], {}],
      [report, { TERM: 'dumb' }],
    ] as const;
    const runs = await Promise.all(cases.map(([args, env]) => runCliOnTerminal([...args], env)));
    for (const r of runs) {
      expect(r.stdout).toContain('Which flows did policy deny');
      expect(r.stdout).not.toContain(ESC);
    }
    expect((await runCliOnTerminal(['estimate', '-f', small])).stdout).toContain(ESC);
    expect(
      (await runCliOnTerminal(['estimate', '-f', small], { NO_COLOR: '1' })).stdout,
    ).not.toContain(ESC);
  });
});

describe('one flag vocabulary', () => {
  const helps = new Map<string, CliResult>();
  beforeAll(async () => {
    const runs = await Promise.all(COMMANDS.map((cmd) => runCli([cmd, '--help'])));
    for (const [i, cmd] of COMMANDS.entries()) helps.set(cmd, runs[i]!);
  });

  it('every --help lists the exit codes and --no-color, and no old flag name', async () => {
    for (const cmd of COMMANDS) {
      const r = helps.get(cmd)!;
      expect(r.status).toBe(0);
      expect({ cmd, codes: /\nExit codes:\n {2}0 {2}.+\n/.test(r.stdout) }).toEqual({
        cmd,
        codes: true,
      });
      expect(r.stdout).toMatch(/ 2 {2}.*(usage|bad)/);
      expect(r.stdout).toContain('--no-color');
      expect(r.stdout).not.toMatch(/--cluster-name|--node-name|--flush </);
      expect(r.stdout).not.toContain('DESIGN.md');
    }
    expect((await runCli(['--help'])).stdout).toContain('Exit codes');
  });

  it('the commands that read CloudWatch take --cluster and -c/--config; the agent --cluster and --node', async () => {
    for (const cmd of ['setup', 'report', 'query', 'estimate', 'agent']) {
      const help = helps.get(cmd)!.stdout;
      expect({ cmd, cluster: help.includes('--cluster <name>') }).toEqual({ cmd, cluster: true });
      expect({ cmd, config: help.includes('-c, --config <file>') }).toEqual({ cmd, config: true });
    }
    expect(helps.get('agent')!.stdout).toContain('--node <name>');
    expect(helps.get('demo')!.stdout).toContain('--flush-interval <seconds>');
  });

  it('the old names still work: agent --cluster-name/--node-name, setup --cluster-name, demo --flush', async () => {
    const agent = await runCli([
      'agent',
      '--cluster-name',
      'old-c',
      '--node-name',
      'old-n',
      '--print-config',
    ]);
    expect(agent.status).toBe(0);
    expect(agent.stdout).toMatch(/^clusterName: old-c\nnodeName: old-n\n/);
    const setup = await runCli([
      'setup',
      '--cluster-name',
      'old-c',
      '--dry-run',
      '--region',
      'us-east-1',
      '--endpoint',
      'http://127.0.0.1:1',
    ]);
    expect(setup.status).toBe(0);
    expect(setup.stdout).toContain('would create log group flowtrail-flowlogs-old-c');
    // The value given to --flush reaches --flush-interval's check.
    const demo = await runCli(['demo', '--flush', '999']);
    expect(demo.status).toBe(2);
    expect(demo.stderr).toContain('--flush-interval: expected an integer from 1 to 300, got "999"');
  });

  it('agent --help points to docs/configuration.md, which documents every key', async () => {
    const help = helps.get('agent')!.stdout;
    expect(help).toContain('docs/configuration.md');
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toContain('FLOWTRAIL_FLOW_LOGS_FLUSH_INTERVAL_SECONDS');
  });

  it('usage errors exit 2 in every command', async () => {
    const runs = await Promise.all(COMMANDS.map((cmd) => runCli([cmd, '--no-such-flag'])));
    for (const [i, cmd] of COMMANDS.entries()) {
      const r = runs[i]!;
      expect({ cmd, status: r.status }).toEqual({ cmd, status: 2 });
      expect(r.stderr).toContain("unknown option '--no-such-flag'");
    }
  });
});

describe('setup --dry-run needs no AWS access', () => {
  // No credentials anywhere: no keys, no profile files, a HOME without ~/.aws.
  const noCredentials = {
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    HOME: dir,
  };
  const args = ['setup', '--dry-run', '--cluster', 'dry', '--region', 'us-east-1'];

  it('without credentials it prints the whole plan, says why it could not compare, and exits 0', async () => {
    const r = await runCli([...args, '--endpoint', 'http://127.0.0.1:1'], noCredentials);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('would create log group flowtrail-flowlogs-dry');
    expect(r.stdout).toContain('would create alarm flowtrail-dry-denied-packets');
    expect(r.stdout).toContain('would save Logs Insights query flowtrail/top-talkers');
    expect(r.stderr).toMatch(
      /cannot read what exists \(CredentialsProviderError: .+\); the plan below assumes nothing exists yet/,
    );
    const json = await runCli([...args, '--json'], noCredentials);
    expect(json.status).toBe(0);
    const plan = JSON.parse(json.stdout);
    expect(plan).toMatchObject({ dryRun: true, currentState: 'unknown' });
    expect(plan.currentStateError).toMatch(/^CredentialsProviderError/);
    expect(plan.changes.map((c: { kind: string }) => c.kind)).toContain('create-log-group');
  });

  it('with credentials but an endpoint that refuses, the same; without --dry-run that is an error (exit 1)', async () => {
    const dry = await runCli([...args, '--endpoint', 'http://127.0.0.1:1']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain('would create log group flowtrail-flowlogs-dry');
    expect(dry.stderr).toMatch(/cannot read what exists \(.*ECONNREFUSED/);
    const real = await runCli([
      'setup',
      '--cluster',
      'dry',
      '--region',
      'us-east-1',
      '--endpoint',
      'http://127.0.0.1:1',
    ]);
    expect(real.status).toBe(1);
    expect(real.stdout).toBe('');
  });
});

describe('estimate says how wide the sample is and how uncertain the projection', () => {
  /** Records over `intervals` flush intervals of `seconds`, `counts[i]` distinct flows in interval i. */
  function sample(seconds: number, counts: number[]): string {
    const lines: string[] = [];
    counts.forEach((n, i) => {
      const start = 1_764_000_000 + i * seconds;
      for (let k = 0; k < n; k++)
        lines.push(
          encodeRecord(
            rec(0, {
              startTime: start,
              endTime: start + seconds,
              srcPort: 40_000 + k,
              srcIP: '10.0.0.1',
              dstIP: '10.0.0.2',
              action: 'allow',
            }),
          ),
        );
    });
    const file = join(
      dir,
      `sample-${seconds}-${counts.length}-${counts.slice(0, 4).join('-')}.log`,
    );
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }
  const estimate = async (file: string) => {
    const r = await runCli(['estimate', '-f', file, '--json']);
    expect(r.status).toBe(0);
    return { e: JSON.parse(r.stdout) as Estimate, stderr: r.stderr };
  };

  it('a 9-second sample: warned as a rough guess, with a 95% range around each projection', async () => {
    const { e, stderr } = await estimate(sample(3, [2, 5, 3]));
    expect(e.sample).toEqual({
      spanSeconds: 9,
      intervalSeconds: 3,
      intervals: 3,
      short: true,
      coversDay: false,
    });
    expect(e.warnings[0]).toBe(
      'the sample spans 9 s (3 flush intervals of 3 s): a day projected from it is a rough guess; sample at least an hour, better a whole day',
    );
    expect(stderr).toContain('flowtrail estimate: warning: the sample spans 9 s');
    const kind0 = e.rows.find((r) => r.kind === 0)!;
    // Records per interval 2, 5, 3: mean 10/3, sd √(7/3); ± t(0.975, 2) · sd · √3 over 9 s.
    const half = 4.303 * Math.sqrt(7 / 3) * Math.sqrt(3);
    const perDay = 86_400 / 9;
    expect(kind0.recordsPerDay).toBe(Math.round(10 * perDay));
    expect(kind0.range95!.recordsPerDay).toEqual([
      Math.round(Math.max(0, 10 - half) * perDay),
      Math.round((10 + half) * perDay),
    ]);
    const [lo, hi] = kind0.range95!.monthlyUsdStandard;
    expect(lo).toBeLessThan(kind0.monthlyUsdStandard);
    expect(hi).toBeGreaterThan(kind0.monthlyUsdStandard);
    const table = await runCli(['estimate', '-f', sample(3, [2, 5, 3])]);
    expect(table.stdout).toContain('3 flush intervals of 3 s');
    expect(table.stdout).toContain('warning: the sample spans 9 s');
    expect(table.stdout).toContain('95% range');
  });

  it('a steady day: no warning, and the range is the projection itself', async () => {
    const { e } = await estimate(
      sample(
        300,
        Array.from({ length: 288 }, () => 4),
      ),
    );
    expect(e.sample).toMatchObject({
      spanSeconds: 86_400,
      intervals: 288,
      short: false,
      coversDay: true,
    });
    expect(e.warnings).toEqual([]);
    for (const row of e.rows) {
      expect(row.range95!.recordsPerDay).toEqual([row.recordsPerDay, row.recordsPerDay]);
      expect(row.range95!.ingestGbPerDay[0]).toBeCloseTo(row.ingestGbPerDay, 12);
      expect(row.range95!.ingestGbPerDay[1]).toBeCloseTo(row.ingestGbPerDay, 12);
    }
  });

  it('one interval: no range can be given, and it says so', async () => {
    const { e } = await estimate(sample(60, [7]));
    expect(e.rows.every((r) => r.range95 === null)).toBe(true);
    expect(e.warnings).toContain(
      'a single flush interval: no range can be given for the projection',
    );
    expect((await runCli(['estimate', '-f', sample(60, [7])])).stdout).toContain('unknown');
  });
});

describe('logs', () => {
  it('the agent logs JSON lines whose level is a word', async () => {
    // No sink configured: a fatal error before anything starts, exit 1.
    const r = await runCli(['agent', '--cluster', 'c', '--node', 'n']);
    expect(r.status).toBe(1);
    const lines = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: unknown; msg: string });
    expect(lines.map((l) => l.level)).toEqual(['fatal']);
    expect(lines[0]!.msg).toContain('no sink configured');
  });
});

describe.skipIf(skipKernel)('closed pipes on a simulated node: capture and agent --stdout', () => {
  let node: SimNode;
  let client: SimPod;
  let server: SimPod;

  beforeAll(async () => {
    node = await SimNode.create();
    client = node.addPod({ namespace: 'client', name: 'client-0', ip: '10.244.7.2' });
    server = node.addPod({ namespace: 'prod', name: 'api-0', ip: '10.244.7.3' });
    await startTcpServer(node, server, server.ip, 8080);
  });
  afterAll(async () => {
    await node?.destroy();
  });

  it('capture --dump into a closed pipe', async () => {
    await tcpTransfer(node, client, server.ip, 8080, { sendBytes: 100, receiveBytes: 100 });
    const child = node.spawn([process.execPath, CLI, 'capture', '--dump']);
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(stderr).toMatch(/flowtrail capture: [1-9]\d* conntrack events/);
    expect(status).toBe(0);
  });

  it('agent --stdout: a closed stdout stops the agent like SIGTERM; the file sink gets the last interval', async () => {
    const out = join(dir, 'agent-epipe.log');
    const endpoints = join(dir, 'endpoints.yaml');
    writeFileSync(endpoints, node.endpointsYaml());
    // Open before the agent starts, so its start-up dump finds it and the first flush
    // reports it, whatever else that flush holds.
    const open = await openTcpConnection(node, client, server.ip, 8080, {
      sendBytes: 500,
      receiveBytes: 700,
      holdOpenMs: 3_000,
    });
    const child = node.spawn([
      process.execPath,
      CLI,
      'agent',
      '--cluster',
      'c',
      '--node',
      node.nodeName,
      '--stdout',
      '--file',
      out,
      '--flush-interval',
      '1',
      '--set',
      `endpoints.file=${endpoints}`,
      '--set',
      'http.listen=',
      '--set',
      'flowLogs.aggregationKindForAllowed=0',
    ]);
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    await waitForLog(child, /agent started/, 20_000);
    // The first flush with records writes to the closed stdout: the agent stops by itself.
    const status = await Promise.race([
      exited,
      new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000)),
    ]);
    expect(status, stderr).toBe(0);
    expect(stderr).toContain('stopping: flushing the partial interval');
    expect(stderr).not.toMatch(/"level":"(error|fatal)"|EPIPE|\n\s+at /);
    const records = readFileSync(out, 'utf8').trim().split('\n');
    expect(records.some((l) => l.includes(` ${open.sport} 8080 `))).toBe(true);
    await open.done;
  }, 60_000);
});
