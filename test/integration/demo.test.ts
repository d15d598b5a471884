/**
 * `flowtrail demo` end to end, as a newcomer runs it: the stars scenario on a
 * simulated node shipping to the CloudWatch emulator. Asserts what the
 * records in CloudWatch say, and that the demo leaves nothing behind.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DemoResult } from '../../src/demo/run.js';
import { TALKS } from '../../src/demo/stars.js';
import type { FlowRecord } from '../../src/format/record.js';
import { listSystemNamespaces } from '../../src/sim/netns.js';
import { skipKdrops, skipKernel, skipMoto } from '../harness/env.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;

/** Demo-like processes (pid and command line). */
function ours(): { pid: string; args: string }[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: m[1]!, args: m[2]! }))
    .filter((p) => /moto_server|traffic-tool|flowtrail\.js agent/.test(p.args));
}

/** The named network namespace a process is in ('' when none or when it was deleted). */
function netnsOf(pid: string): string {
  try {
    return execFileSync('ip', ['netns', 'identify', pid], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

describe.skipIf(skipKernel || skipMoto)('flowtrail demo', () => {
  // iptables: NFLOG + DROP rules; ebpf: TC classifiers that log nothing, seen through kernel drop events.
  it.each(skipKdrops ? ['iptables'] : ['iptables', 'ebpf'])(
    '--dataplane %s: shows denies before and after the allow policies, allowed pairs only after, egress as net/pub, and cleans up',
    (dataplane) => {
      const namespacesBefore = listSystemNamespaces();
      const processesBefore = ours();
      const workDir = join(mkdtempSync(join(tmpdir(), 'ft-demo-')), 'work');
      const run = spawnSync(
        process.execPath,
        [
          CLI,
          'demo',
          '--duration',
          '12',
          '--flush-interval',
          '2',
          '--json',
          '--work-dir',
          workDir,
          '--dataplane',
          dataplane,
        ],
        {
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      expect(run.stderr).not.toMatch(/failed/);
      expect(run.status).toBe(0);
      const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as DemoResult;
      expect(result.source).toBe('cloudwatch');
      expect(result.dataplane).toBe(dataplane);
      // Whose counters: the DROP rules', or each TC program's own map.
      for (const c of result.dropCounters) {
        expect(c.prefix).toMatch(dataplane === 'ebpf' ? /^tc:/ : /\|/);
      }
      expect(result.logGroupName).toBe('flowtrail-flowlogs-stars-demo');
      const records: FlowRecord[] = result.records;
      const boundary = result.phaseBoundary;

      const pair = (r: FlowRecord, src: string, dst: string) =>
        r.srcName.startsWith(src) && r.dstName.startsWith(dst);
      const clientBackendDenied = records.filter(
        (r) => r.action === 'deny' && pair(r, 'client-', 'backend-'),
      );
      expect(clientBackendDenied.some((r) => r.endTime <= boundary)).toBe(true);
      expect(clientBackendDenied.some((r) => r.startTime >= boundary)).toBe(true);
      expect(records.some((r) => r.action === 'allow' && pair(r, 'client-', 'backend-'))).toBe(
        false,
      );

      for (const [src, dst] of [
        ['management-ui-', 'frontend-'],
        ['management-ui-', 'backend-'],
        ['client-', 'frontend-'],
        ['frontend-', 'backend-'],
      ] as const) {
        const allowed = records.filter((r) => r.action === 'allow' && pair(r, src, dst));
        expect(allowed.length, `${src} → ${dst}`).toBeGreaterThan(0);
        // Allowed only once the policies were in: no allow record ends before the boundary.
        expect(
          allowed.every((r) => r.endTime > boundary),
          `${src} → ${dst} allowed before policy`,
        ).toBe(true);
      }

      if (dataplane === 'iptables') {
        // iptables: policy names are on by default (27-field records): every deny names the default deny,
        // and each allowed pair names the policy that allowed it (NFLOG on its connections' first
        // packets: in the intervals its connections started).
        expect(records.every((r) => r.policies !== undefined && r.srcNameAggr !== undefined)).toBe(
          true,
        );
        for (const r of records.filter((x) => x.action === 'deny'))
          expect(r.policies).toBe('default.default-deny');
        for (const t of TALKS) {
          if (!t.allowedBy) continue;
          const named = records.filter(
            (r) =>
              r.action === 'allow' &&
              r.srcName.startsWith(`${t.from}-`) &&
              (t.to === 'internet' ? r.dstType === 'net' : r.dstName.startsWith(`${t.to}-`)) &&
              r.policies!.split('|').includes(t.allowedBy!),
          );
          expect(named.length, `${t.from} → ${t.to} names ${t.allowedBy}`).toBeGreaterThan(0);
        }
        // No policy names what it did not decide.
        const decided = new Set(['default.default-deny', '-', ...TALKS.map((t) => t.allowedBy)]);
        for (const r of records)
          for (const p of r.policies!.split('|')) expect(decided).toContain(p);
      }

      const internet = records.filter(
        (r) => r.action === 'allow' && r.srcName.startsWith('frontend-') && r.dstType === 'net',
      );
      expect(internet.length).toBeGreaterThan(0);
      for (const r of internet)
        expect([r.dstType, r.dstNamespace, r.dstName]).toEqual(['net', '-', 'pub']);

      const deniedInRecords = records
        .filter((r) => r.action === 'deny')
        .reduce((n, r) => n + r.packetsIn + r.packetsOut, 0);
      const dropped = result.dropCounters.reduce((n, c) => n + c.packets, 0);
      expect(dropped).toBeGreaterThan(0);
      expect(deniedInRecords).toBe(dropped);
      expect(result.deniedPacketsMetric).toBe(dropped);
      expect(result.nodeHealthy).toBe(1);

      // This demo's namespaces and processes are gone. Only its own: other work (another
      // test file, a soak) may create and remove namespaces on the machine meanwhile.
      expect(result.namespacePrefix).toMatch(/^ft/);
      expect(namespacesBefore.filter((n) => n.startsWith(result.namespacePrefix))).toEqual([]);
      expect(listSystemNamespaces().filter((n) => n.startsWith(result.namespacePrefix))).toEqual(
        [],
      );
      const before = new Set(processesBefore.map((p) => p.pid));
      const left = ours().filter((p) => {
        if (before.has(p.pid)) return false;
        const ns = netnsOf(p.pid);
        // In a deleted namespace (orphaned) or in one of the demo's.
        return ns === '' || ns.startsWith(result.namespacePrefix) || p.args.includes(workDir);
      });
      expect(left).toEqual([]);
    },
    150_000,
  );

  it('a closed stdout stops it as Ctrl-C does: cleaned up, exit 0, no stack trace', async () => {
    const workDir = join(mkdtempSync(join(tmpdir(), 'ft-demo-')), 'work');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'demo',
        '--duration',
        '60',
        '--flush-interval',
        '1',
        '--no-cloudwatch',
        '--work-dir',
        workDir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // The reader goes away before the first line: `flowtrail demo | true`.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const started = Date.now();
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|failed|\n\s+at /);
    expect(status).toBe(0);
    // It did not run its 60 s of traffic, and left no process of its own behind.
    expect(Date.now() - started).toBeLessThan(45_000);
    expect(ours().filter((p) => p.args.includes(workDir))).toEqual([]);
  }, 90_000);

  it('refuses clearly, with exit code 2, when a flag is bad', () => {
    const run = spawnSync(process.execPath, [CLI, 'demo', '--duration', 'soon'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--duration: expected an integer from 5 to 86400, got "soon"');
  });
});
