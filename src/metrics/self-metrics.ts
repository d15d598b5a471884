/**
 * The agent's own metrics for Prometheus, in a registry of its own (never
 * the global default). Values are read from each component's stats at
 * scrape time, so components need not know about Prometheus. Beside them,
 * prom-client's default process_* and nodejs_* metrics (memory, CPU, file
 * descriptors, event-loop lag, GC) and flowtrail_build_info. Label values
 * are snake_case, as Prometheus conventions and most dashboards expect.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LOSS_KINDS, type LossKind } from '../loss/ledger.js';
import type { DeliveryStats } from '../sinks/cloudwatch-logs/sink.js';
import { type BuildInfo, buildInfo } from '../util/build-info.js';

type Reader = () => number;

export interface SelfMetricSources {
  conntrackEvents(kind: 'new' | 'update' | 'destroy' | 'dumped'): number;
  nflogPackets(): number;
  overruns(source: 'conntrack' | 'nflog'): number;
  resyncs(): number;
  decodeErrors(): number;
  unparsedPrefixes(): number;
  flowsTracked(): number;
  flowsShed(): number;
  /** Connections on a 5-tuple the kernel reopened under the same conntrack id. */
  connectionsReopened?(): number;
  deniedPackets(): number;
  recordsWritten(): number;
  flushes(): number;
  /** Everything lost so far, by kind (src/loss/ledger.ts). */
  lost?(kind: LossKind): number;
  /** Kernel drop events of this node's network namespace so far, by reason name (denies.source kernel/both). */
  kernelDrops?(): ReadonlyMap<string, number>;
  /** Kernel drop events lost in the ring buffer (counted by the BPF program). */
  kernelDropsLost?(): number;
  /** Kernel iptables drops matched to their NFLOG copy (counted once, as NFLOG denies). */
  kernelDropsMatched?(): number;
  /** Records dropped by the namespace filters, and folded into overflow records by the cap. */
  recordsFiltered?(): number;
  recordsFolded?(): number;
  /** The CloudWatch Logs sink's delivery and spool counters, one reading per scrape. */
  sink?(): DeliveryStats;
}

function counter(registry: Registry, name: string, help: string, read: Reader): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** `ConntrackOverrun` → `conntrack_overrun`: label values in snake_case. */
export function snakeCase(value: string): string {
  return value.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

function labelledCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  values: readonly L[],
  read: (v: L) => number,
): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of values) this.inc({ [label]: snakeCase(v) }, read(v));
    },
  });
}

function gauge(registry: Registry, name: string, help: string, read: Reader): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** PutLogEvents latency, observed by the sink as requests complete. */
export function createPutLatencyHistogram(): Histogram {
  return new Histogram({
    name: 'flowtrail_cloudwatch_put_latency_seconds',
    help: 'PutLogEvents latency',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [],
  });
}

export function createSelfMetrics(
  s: SelfMetricSources,
  extra: readonly Histogram[] = [],
  build: BuildInfo = buildInfo(),
): Registry {
  const r = new Registry();
  for (const m of extra) r.registerMetric(m);
  // process_resident_memory_bytes, nodejs_heap_size_used_bytes,
  // nodejs_external_memory_bytes … : what operators graph next to the
  // container's memory limit (they replace flowtrail_process_resident_memory_bytes,
  // flowtrail_heap_used_bytes, flowtrail_heap_total_bytes and flowtrail_external_memory_bytes).
  collectDefaultMetrics({ register: r });
  new Gauge({
    name: 'flowtrail_build_info',
    help: 'always 1; the labels say which build runs (version, commit, node_version)',
    labelNames: ['version', 'commit', 'node_version'],
    registers: [r],
  }).set({ version: build.version, commit: build.commit, node_version: build.nodeVersion }, 1);
  labelledCounter(
    r,
    'flowtrail_conntrack_events_total',
    'conntrack events received, by kind',
    'kind',
    ['new', 'update', 'destroy', 'dumped'] as const,
    (k) => s.conntrackEvents(k),
  );
  counter(r, 'flowtrail_nflog_packets_total', 'NFLOG packets received', s.nflogPackets);
  if (s.recordsFiltered) {
    counter(
      r,
      'flowtrail_records_filtered_total',
      'records not written because of flowLogs.includeNamespaces/excludeNamespaces',
      s.recordsFiltered,
    );
  }
  if (s.recordsFolded) {
    counter(
      r,
      'flowtrail_records_folded_total',
      'records folded into overflow records by flowLogs.maxRecordsPerFlush',
      s.recordsFolded,
    );
  }
  const kernelDrops = s.kernelDrops;
  if (kernelDrops) {
    new Counter({
      name: 'flowtrail_kernel_drops_total',
      help: "packets the kernel dropped in this node's network namespace (kfree_skb), by drop reason; policy reasons (NETFILTER_DROP, TC_INGRESS, TC_EGRESS, BPF_CGROUP_EGRESS) are also deny records",
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of kernelDrops()) this.inc({ reason }, n);
      },
    });
  }
  if (s.kernelDropsLost) {
    counter(
      r,
      'flowtrail_kernel_drops_lost_total',
      'kernel drop events the ring buffer had no room for (raise denies.ringBufferBytes)',
      s.kernelDropsLost,
    );
  }
  if (s.kernelDropsMatched) {
    counter(
      r,
      'flowtrail_kernel_drops_matched_total',
      'iptables drop events matched to the NFLOG deny of the same packet (counted once)',
      s.kernelDropsMatched,
    );
  }
  const lost = s.lost;
  if (lost) {
    labelledCounter(
      r,
      'flowtrail_lost_events_total',
      'events, connections or records lost, by kind (also the LostEvents metric and the <node>_Events stream)',
      'kind',
      LOSS_KINDS,
      (k) => lost(k),
    );
  }
  labelledCounter(
    r,
    'flowtrail_netlink_overruns_total',
    'netlink socket overruns (ENOBUFS): events were lost',
    'source',
    ['conntrack', 'nflog'] as const,
    (k) => s.overruns(k),
  );
  counter(
    r,
    'flowtrail_conntrack_resyncs_total',
    'conntrack resync dumps after overruns',
    s.resyncs,
  );
  counter(
    r,
    'flowtrail_decode_errors_total',
    'netlink messages skipped as malformed',
    s.decodeErrors,
  );
  counter(
    r,
    'flowtrail_nflog_unparsed_prefixes_total',
    'NFLOG packets whose prefix is not in the AODIII|tier.policy convention',
    s.unparsedPrefixes,
  );
  gauge(r, 'flowtrail_flows_tracked', 'connections tracked by the flow table', s.flowsTracked);
  if (s.connectionsReopened) {
    counter(
      r,
      'flowtrail_conntrack_reopened_total',
      'connections on a 5-tuple (and conntrack id) the kernel reopened while the agent held an older one',
      s.connectionsReopened,
    );
  }
  counter(
    r,
    'flowtrail_flows_shed_total',
    'connections not tracked because flowLogs.maxTrackedFlows was reached',
    s.flowsShed,
  );
  counter(
    r,
    'flowtrail_denied_packets_total',
    'denied packets seen (NFLOG deny verdicts and kernel policy drops)',
    s.deniedPackets,
  );
  counter(r, 'flowtrail_records_written_total', 'flow records produced', s.recordsWritten);
  counter(r, 'flowtrail_flushes_total', 'flush intervals completed', s.flushes);
  const sink = s.sink;
  if (sink) {
    const k =
      (field: keyof DeliveryStats): Reader =>
      () =>
        sink()[field];
    counter(
      r,
      'flowtrail_cloudwatch_records_sent_total',
      'records accepted by PutLogEvents',
      k('recordsSent'),
    );
    counter(
      r,
      'flowtrail_cloudwatch_bytes_sent_total',
      'bytes sent to PutLogEvents (message bytes + 26 each)',
      k('bytesSent'),
    );
    counter(r, 'flowtrail_cloudwatch_requests_total', 'PutLogEvents requests', k('requests'));
    counter(
      r,
      'flowtrail_cloudwatch_request_failures_total',
      'failed CloudWatch Logs requests (retried)',
      k('failedRequests'),
    );
    counter(
      r,
      'flowtrail_cloudwatch_rejected_events_total',
      'events CloudWatch rejected in rejectedLogEventsInfo',
      k('rejected'),
    );
    counter(
      r,
      'flowtrail_cloudwatch_dropped_events_total',
      'events dropped before sending (outside the accepted time window)',
      k('dropped'),
    );
    gauge(
      r,
      'flowtrail_spool_records',
      'records in the spool waiting for delivery',
      k('spoolDepth'),
    );
    gauge(r, 'flowtrail_spool_bytes', 'bytes of spool segments on disk', k('spoolBytes'));
    counter(
      r,
      'flowtrail_spool_dropped_total',
      'records dropped because the spool was full',
      k('spoolDropped'),
    );
    gauge(
      r,
      'flowtrail_cloudwatch_last_put_latency_seconds',
      'latency of the last PutLogEvents call (the distribution: flowtrail_cloudwatch_put_latency_seconds)',
      k('lastPutLatencySeconds'),
    );
  }
  return r;
}
