/**
 * The agent's HTTP endpoints over a real socket: /metrics is valid
 * Prometheus text exposition (checked by the small parser below, not by
 * prom-client itself), its values are read from the components' stats at
 * scrape time, and /readyz explains why the node is not ready.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOSS_KINDS } from '../../src/loss/ledger.js';
import type { HealthReport } from '../../src/metrics/health.js';
import { startHttpServer } from '../../src/metrics/http-server.js';
import {
  createPutLatencyHistogram,
  createSelfMetrics,
  type SelfMetricSources,
  snakeCase,
} from '../../src/metrics/self-metrics.js';
import { scrapeGauges } from '../../tooling/soak/run.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? ([^ ]+)(?: (-?\d+))?$/;
const SUFFIXES: Record<string, string[]> = {
  counter: ['', '_total', '_created'],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['', '_sum', '_count', '_created'],
  untyped: [''],
};

/** Parses Prometheus text format 0.0.4, throwing on anything malformed. */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  let current: Family | undefined;
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (help) {
      if (!NAME.test(help[1]!)) throw new Error(`bad metric name in ${line}`);
      if (families.has(help[1]!)) throw new Error(`second HELP for ${help[1]}`);
      current = { name: help[1]!, type: 'untyped', help: help[2]!, samples: [] };
      families.set(current.name, current);
    } else if (type) {
      if (!current || current.name !== type[1] || current.samples.length > 0)
        throw new Error(`TYPE for ${type[1]} not right after its HELP`);
      current.type = type[2]!;
    } else if (line.startsWith('#')) {
    } else {
      const m = SAMPLE.exec(line);
      if (!m) throw new Error(`bad sample line: ${line}`);
      if (!current) throw new Error(`sample before any HELP/TYPE: ${line}`);
      const suffix = m[1]!.slice(current.name.length);
      if (!m[1]!.startsWith(current.name) || !SUFFIXES[current.type]!.includes(suffix))
        throw new Error(`sample ${m[1]} does not belong to ${current.type} ${current.name}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1]!] = l[2]!;
      const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
      // Prometheus reads values with Go's ParseFloat, which takes NaN in any case
      // (prom-client writes `Nan`, e.g. an event-loop lag before its first sample).
      if (Number.isNaN(value) && m[3]!.toLowerCase() !== 'nan')
        throw new Error(`bad value in ${line}`);
      const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
      if (seen.has(key)) throw new Error(`duplicate series ${key}`);
      seen.add(key);
      current.samples.push({ name: m[1]!, labels, value });
    }
  }
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    // One histogram per label set (other than le); a labelled one may have none yet.
    const series = new Map<string, Sample[]>();
    for (const s of f.samples) {
      const { le: _, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, samples] of series) {
      const buckets = samples.filter((s) => s.name.endsWith('_bucket'));
      const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
      if (les.at(-1) !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
      for (let i = 1; i < buckets.length; i++) {
        if (!(les[i]! > les[i - 1]!) || buckets[i]!.value < buckets[i - 1]!.value)
          throw new Error(`${f.name}${key}: buckets not cumulative`);
      }
      const count = samples.find((s) => s.name === `${f.name}_count`);
      if (count?.value !== buckets.at(-1)?.value)
        throw new Error(`${f.name}${key}: +Inf != _count`);
    }
  }
  return families;
}

function value(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}) {
  const fam = [...fams.values()].find((f) => f.samples.some((s) => s.name === name));
  const s = fam?.samples.find(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  if (!s) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return s.value;
}

const stats = {
  ct: { new: 0, update: 0, destroy: 0, dumped: 0, overruns: 0, resyncs: 0, decodeErrors: 0 },
  nflog: { packets: 0, overruns: 0, unparsed: 0, decodeErrors: 0 },
  table: { tracked: 0, shed: 0, denied: 0 },
  core: { records: 0, flushes: 0 },
  sink: {
    recordsSent: 0,
    bytesSent: 0,
    requests: 0,
    failed: 0,
    rejected: 0,
    dropped: 0,
    depth: 0,
    bytes: 0,
    spoolDropped: 0,
    latencyMs: 0,
  },
};
const sources: SelfMetricSources = {
  conntrackEvents: (k) => stats.ct[k],
  nflogPackets: () => stats.nflog.packets,
  overruns: (s) => (s === 'conntrack' ? stats.ct.overruns : stats.nflog.overruns),
  resyncs: () => stats.ct.resyncs,
  decodeErrors: () => stats.ct.decodeErrors + stats.nflog.decodeErrors,
  unparsedPrefixes: () => stats.nflog.unparsed,
  flowsTracked: () => stats.table.tracked,
  flowsShed: () => stats.table.shed,
  deniedPackets: () => stats.table.denied,
  recordsWritten: () => stats.core.records,
  flushes: () => stats.core.flushes,
  sink: () => ({
    recordsSent: stats.sink.recordsSent,
    bytesSent: stats.sink.bytesSent,
    requests: stats.sink.requests,
    failedRequests: stats.sink.failed,
    rejected: stats.sink.rejected,
    dropped: stats.sink.dropped,
    spoolDepth: stats.sink.depth,
    spoolBytes: stats.sink.bytes,
    spoolDropped: stats.sink.spoolDropped,
    lastPutLatencySeconds: stats.sink.latencyMs / 1000,
  }),
};

let health: HealthReport = { healthy: true, reasons: [] };
const latency = createPutLatencyHistogram();
let server: { address: string; close(): Promise<void> };

beforeAll(async () => {
  server = await startHttpServer({
    listen: '127.0.0.1:0',
    registry: createSelfMetrics(sources, [latency]),
    health: () => health,
  });
});
afterAll(async () => {
  await server?.close();
});

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`http://${server.address}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('/metrics', () => {
  it('the parser used here rejects what Prometheus would (so the checks below can fail)', () => {
    const ok = '# HELP a_total x\n# TYPE a_total counter\na_total 1\n';
    expect(parseExposition(ok).get('a_total')?.samples[0]?.value).toBe(1);
    for (const bad of [
      '# HELP a_total x\n# TYPE a_total counter\na_total 1', // no final newline
      'a_total 1\n', // sample without HELP/TYPE
      '# HELP a x\n# TYPE a gauge\na{k="v} 1\n', // unterminated label
      '# HELP a x\n# TYPE a gauge\na one\n', // value not a number
      '# HELP a x\n# TYPE a gauge\nb 1\n', // sample of another family
      '# HELP a x\n# TYPE a gauge\na 1\na 2\n', // duplicate series
      '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n',
      '# HELP h x\n# TYPE h histogram\nh_bucket{k="a",le="1"} 1\nh_count{k="a"} 1\n', // no +Inf
    ])
      expect(() => parseExposition(bad)).toThrow();
  });

  it('is valid Prometheus text: HELP and TYPE for every family, flowtrail_ names, counters end in _total', async () => {
    const fams = await scrape();
    expect(fams.size).toBeGreaterThanOrEqual(20);
    for (const f of fams.values()) {
      // Ours, and prom-client's default process_* and nodejs_* families.
      expect(f.name).toMatch(/^(flowtrail|process|nodejs)_/);
      expect(f.help.length).toBeGreaterThan(5);
      if (f.type === 'counter') expect(f.name).toMatch(/_total$/);
      // A histogram is named for what it measures, never for being a histogram.
      expect(f.name).not.toMatch(/_histogram$/);
    }
    expect(fams.get('flowtrail_conntrack_events_total')?.type).toBe('counter');
    expect(fams.get('flowtrail_flows_tracked')?.type).toBe('gauge');
    expect(fams.get('flowtrail_cloudwatch_put_latency_seconds')?.type).toBe('histogram');
    expect(value(fams, 'flowtrail_conntrack_events_total', { kind: 'new' })).toBe(0);
  });

  it('serves the default process_* and nodejs_* metrics in place of its own copies', async () => {
    const fams = await scrape();
    for (const [name, type] of [
      ['process_resident_memory_bytes', 'gauge'],
      ['process_cpu_seconds_total', 'counter'],
      ['process_open_fds', 'gauge'],
      ['process_start_time_seconds', 'gauge'],
      ['nodejs_heap_size_used_bytes', 'gauge'],
      ['nodejs_heap_size_total_bytes', 'gauge'],
      ['nodejs_external_memory_bytes', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
    ] as const) {
      expect({ name, type: fams.get(name)?.type }).toEqual({ name, type });
    }
    expect(value(fams, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(value(fams, 'process_open_fds')).toBeGreaterThan(2);
    // The flowtrail_ copies they replace are gone (docs/operations.md says which is which).
    for (const old of [
      'flowtrail_process_resident_memory_bytes',
      'flowtrail_heap_used_bytes',
      'flowtrail_heap_total_bytes',
      'flowtrail_external_memory_bytes',
    ])
      expect(fams.has(old)).toBe(false);
  });

  it('flowtrail_build_info is 1 with the version, the commit and the Node.js version', async () => {
    const fams = await scrape();
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(fams.get('flowtrail_build_info')?.type).toBe('gauge');
    expect(fams.get('flowtrail_build_info')?.samples).toEqual([
      {
        name: 'flowtrail_build_info',
        labels: {
          version: pkg.version,
          commit: process.env.FLOWTRAIL_BUILD_COMMIT || 'unknown',
          node_version: process.versions.node,
        },
        value: 1,
      },
    ]);
    const given = createSelfMetrics(sources, [], {
      version: '9.8.7',
      commit: '0123abc',
      nodeVersion: '24.1.0',
    });
    expect(parseExposition(await given.metrics()).get('flowtrail_build_info')?.samples).toEqual([
      {
        name: 'flowtrail_build_info',
        labels: { version: '9.8.7', commit: '0123abc', node_version: '24.1.0' },
        value: 1,
      },
    ]);
  });

  it('label values are snake_case (loss kinds too)', async () => {
    const counts = new Map(LOSS_KINDS.map((k, i) => [k, i + 1]));
    const registry = createSelfMetrics({ ...sources, lost: (k) => counts.get(k)! });
    const fams = parseExposition(await registry.metrics());
    const lost = fams.get('flowtrail_lost_events_total')!.samples;
    expect(Object.fromEntries(lost.map((s) => [s.labels.kind, s.value]))).toEqual({
      conntrack_overrun: 1,
      hidden_connections: 2,
      nflog_overrun: 3,
      flows_shed: 4,
      spool_full: 5,
      spool_corrupt: 6,
      rejected: 7,
      inconsistent: 8,
    });
    for (const f of fams.values()) {
      if (!f.name.startsWith('flowtrail_') || f.name === 'flowtrail_build_info') continue;
      for (const s of f.samples)
        for (const [label, v] of Object.entries(s.labels))
          if (label !== 'le')
            expect({ series: f.name, v }).toEqual({ series: f.name, v: snakeCase(v) });
    }
  });

  it('reads the stats at scrape time: counters and gauges move exactly with them', async () => {
    stats.ct.new = 120;
    stats.ct.destroy = 118;
    stats.ct.dumped = 7;
    stats.ct.overruns = 2;
    stats.ct.resyncs = 1;
    stats.nflog.packets = 33;
    stats.nflog.decodeErrors = 1;
    stats.ct.decodeErrors = 2;
    stats.table.tracked = 9;
    stats.table.denied = 31;
    stats.core.records = 12;
    stats.sink.recordsSent = 10;
    stats.sink.bytesSent = 1_260;
    stats.sink.depth = 2;
    stats.sink.spoolDropped = 4;
    stats.sink.latencyMs = 250;
    latency.observe(0.02);
    latency.observe(0.3);
    const fams = await scrape();
    expect(value(fams, 'flowtrail_conntrack_events_total', { kind: 'new' })).toBe(120);
    expect(value(fams, 'flowtrail_conntrack_events_total', { kind: 'destroy' })).toBe(118);
    expect(value(fams, 'flowtrail_conntrack_events_total', { kind: 'dumped' })).toBe(7);
    expect(value(fams, 'flowtrail_netlink_overruns_total', { source: 'conntrack' })).toBe(2);
    expect(value(fams, 'flowtrail_netlink_overruns_total', { source: 'nflog' })).toBe(0);
    expect(value(fams, 'flowtrail_conntrack_resyncs_total')).toBe(1);
    expect(value(fams, 'flowtrail_nflog_packets_total')).toBe(33);
    expect(value(fams, 'flowtrail_decode_errors_total')).toBe(3);
    expect(value(fams, 'flowtrail_flows_tracked')).toBe(9);
    expect(value(fams, 'flowtrail_denied_packets_total')).toBe(31);
    expect(value(fams, 'flowtrail_records_written_total')).toBe(12);
    expect(value(fams, 'flowtrail_cloudwatch_records_sent_total')).toBe(10);
    expect(value(fams, 'flowtrail_cloudwatch_bytes_sent_total')).toBe(1_260);
    expect(value(fams, 'flowtrail_spool_records')).toBe(2);
    expect(value(fams, 'flowtrail_spool_dropped_total')).toBe(4);
    expect(value(fams, 'flowtrail_cloudwatch_last_put_latency_seconds')).toBe(0.25);
    const h = 'flowtrail_cloudwatch_put_latency_seconds';
    expect(value(fams, `${h}_count`)).toBe(2);
    expect(value(fams, `${h}_bucket`, { le: '0.025' })).toBe(1);
    expect(value(fams, `${h}_bucket`, { le: '0.5' })).toBe(2);

    stats.ct.new = 121;
    stats.table.tracked = 3;
    const again = await scrape();
    expect(value(again, 'flowtrail_conntrack_events_total', { kind: 'new' })).toBe(121);
    expect(value(again, 'flowtrail_flows_tracked')).toBe(3);
  });

  it('the soak finds every gauge it samples under the names served', async () => {
    const scraped = scrapeGauges(await createSelfMetrics(sources).metrics());
    expect(Object.keys(scraped).sort()).toEqual(
      ['externalMiB', 'flowsTracked', 'heapTotalMiB', 'heapUsedMiB', 'spoolRecords'].sort(),
    );
    expect(scraped.heapUsedMiB).toBeGreaterThan(1);
  });

  it('each agent gets its own registry: two never share a series', async () => {
    const other = createSelfMetrics({ ...sources, sink: undefined });
    const text = await other.metrics();
    expect(text).not.toContain('flowtrail_cloudwatch_records_sent_total');
    expect(parseExposition(text).get('flowtrail_conntrack_events_total')).toBeDefined();
  });
});

describe('/readyz and /healthz', () => {
  it('/readyz is 200 {ready:true} when healthy, 503 with every reason when not; /healthz stays 200', async () => {
    health = { healthy: true, reasons: [] };
    const ok = await fetch(`http://${server.address}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ready: true, reasons: [] });
    health = {
      healthy: false,
      reasons: ['endpoint cache not synced yet', 'sink cloudwatch: spool 95% full'],
    };
    const not = await fetch(`http://${server.address}/readyz`);
    expect(not.status).toBe(503);
    expect(not.headers.get('content-type')).toBe('application/json');
    expect(await not.json()).toEqual({
      ready: false,
      reasons: ['endpoint cache not synced yet', 'sink cloudwatch: spool 95% full'],
    });
    expect((await fetch(`http://${server.address}/healthz`)).status).toBe(200);
    expect((await fetch(`http://${server.address}/readyz?verbose=1`)).status).toBe(503);
    expect((await fetch(`http://${server.address}/other`)).status).toBe(404);
  });

  it('listens on an IPv6 loopback given in brackets', async () => {
    const v6 = await startHttpServer({
      listen: '[::1]:0',
      registry: createSelfMetrics(sources),
      health: () => health,
    }).catch((err: { context?: { errno?: string } }) => err);
    if ('context' in v6 && v6.context?.errno === 'EADDRNOTAVAIL') return; // no IPv6 loopback here
    const s = v6 as { address: string; close(): Promise<void> };
    try {
      expect(s.address).toMatch(/^\[::1\]:\d+$/);
      expect((await fetch(`http://${s.address}/healthz`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('a port already in use fails with ERR_LISTEN naming the address', async () => {
    await expect(
      startHttpServer({
        listen: server.address,
        registry: createSelfMetrics(sources),
        health: () => health,
      }),
    ).rejects.toMatchObject({
      code: 'ERR_LISTEN',
      context: { listen: server.address, errno: 'EADDRINUSE' },
    });
  });
});
