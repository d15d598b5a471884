/**
 * `flowtrail agent`: wires the validated config to the parts — endpoint
 * source, flow table, capture (src/capture/), sinks — and runs the flush loop
 * (src/agent/core.ts) until SIGTERM/SIGINT, then flushes the partial interval.
 */
import { join } from 'node:path';
import { KernelDropListener, KernelDropsUnavailable } from '../capture/kdrops-listener.js';
import { netlinkCapture } from '../capture/netlink-capture.js';
import {
  type Config,
  defaultEventsStreamName,
  defaultLogGroupName,
  defaultLogStreamName,
} from '../config.js';
import { EndpointCache } from '../endpoints/cache.js';
import { startFileSource } from '../endpoints/file-source.js';
import { FlowTable } from '../flows/flow-table.js';
import { VolumeControl } from '../flows/volume.js';
import { encodeRecord } from '../format/codec.js';
import { NetworkPolicyNamer, policyStoreFromFiles } from '../kdrops/policy-namer.js';
import { DenyRouter, type DenySource } from '../kdrops/router.js';
import type { KernelDrop } from '../kdrops/types.js';
import { encodeLossEvent, LOSS_KINDS, type LossKind, LossLedger } from '../loss/ledger.js';
import { LossWatch } from '../loss/watch.js';
import { MetricsPublisher } from '../metrics/cloudwatch-metrics.js';
import { evaluateHealth } from '../metrics/health.js';
import { startHttpServer } from '../metrics/http-server.js';
import { fileJournal } from '../metrics/points-journal.js';
import { createPutLatencyHistogram, createSelfMetrics } from '../metrics/self-metrics.js';
import {
  type CloudWatchLogsSink,
  createCloudWatchLogsSink,
} from '../sinks/cloudwatch-logs/sink.js';
import { createFileSink, createStdoutSink } from '../sinks/file-sink.js';
import { prepareSpoolDir } from '../sinks/spool/spool-dir.js';
import type { Sink } from '../sinks/types.js';
import { AGENT_REGION_REQUIRED, resolveRegion } from '../util/aws-region.js';
import { ConfigError, FlowtrailError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { baselinesPath, loadBaselines, saveBaselines } from './baselines.js';
import { AgentCore } from './core.js';

export interface RunAgentDeps {
  logger: Logger;
  now?: () => number;
  /** Resolves when the agent should stop (default: SIGTERM or SIGINT). */
  stopSignal?: Promise<void>;
}

function signalStop(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

/** The CloudWatch region (util/aws-region.ts), or a configuration error: never a guess. */
function cloudWatchRegion(cw: NonNullable<Config['sinks']['cloudwatch']>): string {
  const region = resolveRegion(cw.region);
  if (region === undefined) throw new ConfigError([AGENT_REGION_REQUIRED]);
  return region;
}

function buildSinks(
  config: Config,
  logger: Logger,
  now: () => number,
  observePutLatency: (s: number) => void,
  ledger: LossLedger,
): Sink[] {
  const sinks: Sink[] = [];
  const cw = config.sinks.cloudwatch;
  if (cw) {
    sinks.push(
      createCloudWatchLogsSink({
        observePutLatency,
        region: cloudWatchRegion(cw),
        ...(cw.endpoint ? { endpoint: cw.endpoint } : {}),
        logGroupName: cw.logGroupName ?? defaultLogGroupName(config.clusterName),
        logStreamName: cw.logStreamName ?? defaultLogStreamName(config.nodeName),
        retentionDays: cw.retentionDays,
        tags: { 'flowtrail:cluster': config.clusterName, ...(cw.tags ?? {}) },
        spoolDir: config.spool.dir,
        spoolMaxBytes: config.spool.maxBytes,
        logger,
        now,
        onLoss: (kind, count, windowStartMs, windowEndMs, detail) =>
          ledger.note({ kind, count, windowStartMs, windowEndMs, notedAtMs: now(), detail }),
      }),
    );
  }
  if (config.sinks.file) sinks.push(createFileSink(config.sinks.file));
  if (config.sinks.stdout) sinks.push(createStdoutSink());
  return sinks;
}

/**
 * The `<nodeName>_Events` stream: one JSON line per loss, beside the records
 * (never inside them: the records stream stays pure). Spooled like records.
 */
function buildEventsSink(config: Config, logger: Logger, now: () => number): Sink | undefined {
  const cw = config.sinks.cloudwatch;
  if (!cw) return undefined;
  const dir = join(config.spool.dir, 'events');
  prepareSpoolDir(dir);
  return createCloudWatchLogsSink({
    region: cloudWatchRegion(cw),
    ...(cw.endpoint ? { endpoint: cw.endpoint } : {}),
    logGroupName: cw.logGroupName ?? defaultLogGroupName(config.clusterName),
    logStreamName: defaultEventsStreamName(config.nodeName),
    retentionDays: cw.retentionDays,
    spoolDir: dir,
    spoolMaxBytes: Math.max(1024 * 1024, Math.floor(config.spool.maxBytes / 64)),
    logger: logger.child({ stream: 'events' }),
    now,
  });
}

/**
 * The NetworkPolicy evaluator that names the policy behind kernel drops:
 * fed by informers with endpoints.kubernetes, by denies.networkPoliciesFile
 * with endpoints.file; none with denies.source nflog or namePolicies off.
 */
async function startPolicyNaming(
  config: Config,
  cache: EndpointCache,
  logger: Logger,
): Promise<{ namer: NetworkPolicyNamer; close(): Promise<void> } | undefined> {
  if (config.denies.source === 'nflog' || !config.denies.namePolicies) return undefined;
  if (config.denies.networkPoliciesFile) {
    const store = policyStoreFromFiles(config.denies.networkPoliciesFile, config.endpoints.file);
    logger.info(
      { path: config.denies.networkPoliciesFile, networkPolicies: store.list().length },
      'NetworkPolicies loaded for naming kernel denies',
    );
    return { namer: new NetworkPolicyNamer(store, cache), close: async () => {} };
  }
  if (!config.endpoints.kubernetes) return undefined;
  const { PolicyStore, startPolicySource } = await import('../policy/index.js');
  const store = new PolicyStore();
  try {
    const source = await startPolicySource({
      store,
      logger,
      kubeconfig: config.endpoints.kubernetes.kubeconfig,
    });
    return { namer: new NetworkPolicyNamer(store, cache), close: () => source.close() };
  } catch (err) {
    // Names are a bonus: kernel denies are still counted, unnamed.
    logger.warn(
      { err: (err as Error).message },
      'NetworkPolicies not readable (RBAC list/watch on networkpolicies and namespaces?): kernel denies carry no policy name',
    );
    return undefined;
  }
}

/**
 * The kernel drop source per denies.source: absent means both where this
 * kernel and these privileges allow it, else nflog (with the reason logged);
 * kernel or both asked for explicitly must start, or the agent does not.
 */
function startKernelDrops(
  config: Config,
  logger: Logger,
  now: () => number,
  onDrops: (drops: KernelDrop[]) => void,
): { source: DenySource; listener: KernelDropListener | undefined } {
  const asked = config.denies.source;
  if (asked === 'nflog') {
    logger.info({ source: 'nflog', why: 'denies.source: nflog' }, 'deny source');
    return { source: 'nflog', listener: undefined };
  }
  const listener = new KernelDropListener({
    tickMs: config.conntrack.tickMs,
    ringBytes: config.denies.ringBufferBytes,
    logger,
    onDrops,
    onDecodeError: (err) =>
      logger.debug({ code: err.code, ...err.context }, 'kernel drop record skipped'),
    onError: (err) => logger.error({ err: err.message }, 'kernel drop source error'),
  });
  try {
    listener.start();
  } catch (err) {
    if (asked !== undefined || !(err instanceof KernelDropsUnavailable)) {
      throw new FlowtrailError(
        'ERR_KDROPS_START',
        `denies.source: ${asked ?? 'both'} needs the kernel drop source, which did not start: ${(err as Error).message}${err instanceof KernelDropsUnavailable ? `; fix: ${err.fix}` : ''}`,
        { source: asked },
        { cause: err },
      );
    }
    logger.warn(
      { source: 'nflog', why: err.message, fix: err.fix, code: err.code },
      'deny source: nflog only (the kernel drop source is not available here; set denies.source to silence this)',
    );
    return { source: 'nflog', listener: undefined };
  }
  const source = asked ?? 'both';
  logger.info(
    {
      source,
      why: asked ? `denies.source: ${asked}` : 'default: the kernel drop source loaded',
      at: now(),
    },
    'deny source',
  );
  return { source, listener };
}

export async function runAgent(config: Config, deps: RunAgentDeps): Promise<void> {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  // No sink or a missing region is a configuration error, said before anything starts.
  const { cloudwatch, file, stdout } = config.sinks;
  if (!cloudwatch && !file && !stdout) {
    throw new FlowtrailError(
      'ERR_NO_SINK',
      'no sink configured: set sinks.cloudwatch, sinks.file.path or sinks.stdout (or --file/--stdout)',
    );
  }
  if (cloudwatch) cloudWatchRegion(cloudwatch);
  // The spool directory holds the spool, the baselines and the unsent metric
  // points: a problem with it is a clear error now, before capture starts.
  prepareSpoolDir(config.spool.dir);
  const cache = new EndpointCache({
    nodeName: config.nodeName,
    graceMs: config.endpoints.graceSeconds * 1000,
  });
  let source: { close(): Promise<void> } | undefined;
  if (config.endpoints.file) {
    source = await startFileSource({ path: config.endpoints.file, cache, logger, now });
  } else if (config.endpoints.kubernetes) {
    const { startKubernetesSource } = await import('../endpoints/kubernetes-source.js');
    source = await startKubernetesSource({
      cache,
      logger,
      nodeName: config.nodeName,
      kubeconfig: config.endpoints.kubernetes.kubeconfig,
      now,
    });
  } else {
    logger.warn(
      'no endpoint source configured (endpoints.file or endpoints.kubernetes): every address is reported as net',
    );
    cache.markSynced();
  }
  const policies = await startPolicyNaming(config, cache, logger);
  const table = new FlowTable({
    endpoints: cache,
    aggregationKindForAllowed: config.flowLogs.aggregationKindForAllowed,
    aggregationKindForDenied: config.flowLogs.aggregationKindForDenied,
    includeLabels: config.flowLogs.includeLabels,
    includePolicies: config.flowLogs.includePolicies,
    enabledForAllowed: config.flowLogs.enabledForAllowed,
    enabledForDenied: config.flowLogs.enabledForDenied,
    ingressGroup: config.nflog.ingressGroup,
    egressGroup: config.nflog.egressGroup,
    maxFlows: config.flowLogs.maxTrackedFlows,
    ...(policies ? { denyPolicyNamer: policies.namer } : {}),
  });
  const kernel = startKernelDrops(config, logger, now, (drops) => router.kernel(drops, now()));
  const router = new DenyRouter(kernel.source, table, config.denies.matchWindowMs);
  let stopping = false;
  const volume = new VolumeControl(config.flowLogs);
  const putLatency = createPutLatencyHistogram();
  const ledger = new LossLedger();
  const sinks = buildSinks(config, logger, now, (seconds) => putLatency.observe(seconds), ledger);
  const eventsSink = buildEventsSink(config, logger, now);
  const capture = netlinkCapture(config, logger, now, (atMs) => table.markListening(atMs));
  const losses = new LossWatch(ledger, {
    conntrackDrops: () => capture.readStats().conntrack.kernelDrops,
    nflogDrops: () => capture.readStats().nflog.kernelDrops,
    flowsShed: () => table.stats.shed,
    foundInDump: () => table.stats.foundInDump,
    unknownDestroys: () => table.stats.unknownDestroys,
    vanished: () => table.stats.vanished,
    destroysMissed: () => table.stats.destroysMissed,
    inconsistent: () => table.stats.inconsistent,
  });
  const ids = { clusterName: config.clusterName, nodeName: config.nodeName };
  // Loss entries the events stream could not spool yet (a full disk): retried at the next flush.
  let unspooledLosses: ReturnType<LossLedger['take']> = [];
  const reportLosses = async (): Promise<void> => {
    const fresh = ledger.take();
    for (const e of fresh) logger.warn({ loss: e }, 'data lost: this window is incomplete');
    const entries = [...unspooledLosses, ...fresh];
    if (entries.length === 0) return;
    unspooledLosses = [];
    await eventsSink
      ?.write(entries.map((e) => ({ line: encodeLossEvent(e, ids), timestampMs: e.notedAtMs })))
      .catch((err: Error) => {
        unspooledLosses = entries;
        logger.error(
          { err: err.message, pending: entries.length },
          'cannot spool loss events for the events stream; retrying at the next flush',
        );
      });
  };
  const variant = config.flowLogs.includePolicies ? 27 : 24;
  // Counts stay exact across restarts: what was already reported per connection.
  const baselinesFile = baselinesPath(config.spool.dir);
  const saved = loadBaselines(baselinesFile);
  if (saved.kind === 'loaded') {
    table.importBaselines(saved.snapshot, now());
    logger.info(
      { connections: saved.connections, savedAtMs: saved.savedAtMs },
      'restored flow baselines from the last run',
    );
  } else if (saved.kind === 'invalid') {
    logger.warn(
      { reason: saved.reason },
      'flow baselines not restored; connections open across the restart report their totals',
    );
  }
  const resumeFromMs = table.resumeFromMs;
  const core = new AgentCore({
    ...(resumeFromMs !== undefined ? { resumeFromMs } : {}),
    table: {
      onConntrackEvent: (e, t) => table.onConntrackEvent(e, t),
      onNflog: (p, t) => router.nflog(p, t),
      beginDump: () => table.beginDump(),
      onDumpEvent: (e, t) => table.onDumpEvent(e, t),
      endDump: (t) => table.endDump(t),
      flush: (start, end) => {
        // Kernel drops queued now, and iptables drops whose NFLOG copy is overdue (all at stop).
        kernel.listener?.drain();
        router.release(now(), stopping);
        const records = table.flush(start, end);
        return volume.active ? volume.apply(records) : records;
      },
    },
    capture,
    sinks,
    encode: (r) => encodeRecord(r, { variant }),
    flushIntervalMs: config.flowLogs.flushIntervalSeconds * 1000,
    now,
    logger,
    // Right after the records reached every sink: a crash in between repeats
    // this interval's deltas, so the gap is kept as short as it can be. Not
    // after a flush a sink did not take (a full spool disk): the saved
    // baselines stay before those records, so a restart reports them again.
    onCommitted: () => {
      try {
        saveBaselines(baselinesFile, table.exportBaselines(), now());
      } catch (err) {
        logger.error(
          { err: (err as Error).message, path: baselinesFile },
          'cannot save flow baselines; a restart may count this interval twice',
        );
      }
    },
    onFlushed: async (interval) => {
      losses.onInterval(interval.startMs, interval.endMs, now());
      await reportLosses();
      cache.prune(now());
    },
  });
  let captureOpen = false;
  const health = () =>
    evaluateHealth(
      {
        captureOpen: () => captureOpen,
        lastDumpOkMs: () => core.stats.lastDumpOkMs,
        endpointsSynced: () => cache.synced,
        sinks: () => sinks.map((k) => ({ name: k.name, ...k.health() })),
      },
      now(),
      // Dumps run once per flush: unhealthy after three missed ones.
      Math.max(3 * config.flowLogs.flushIntervalSeconds * 1000, 60_000),
    );
  const cw = sinks.find((k): k is CloudWatchLogsSink => k.name === 'cloudwatch');
  const registry = createSelfMetrics(
    {
      conntrackEvents: (kind) => capture.readStats().conntrack[kind],
      nflogPackets: () => capture.readStats().nflog.packets,
      overruns: (src) => capture.readStats()[src].overruns,
      resyncs: () => core.stats.resyncs,
      decodeErrors: () => {
        const { conntrack, nflog } = capture.readStats();
        return conntrack.decodeErrors + nflog.decodeErrors;
      },
      unparsedPrefixes: () => capture.readStats().nflog.unparsedPrefixes,
      flowsTracked: () => table.stats.tracked,
      flowsShed: () => table.stats.shed,
      connectionsReopened: () => table.stats.reopened,
      deniedPackets: () => table.stats.deniedPackets,
      ...(kernel.listener
        ? {
            kernelDrops: () => router.counts.all(),
            kernelDropsLost: () => kernel.listener?.readStats().lost ?? 0,
            kernelDropsMatched: () => router.join.stats.matched,
          }
        : {}),
      recordsWritten: () => core.stats.recordsWritten,
      flushes: () => core.stats.flushes,
      lost: (kind) => ledger.total(kind),
      recordsFiltered: () => volume.stats.filteredByNamespace,
      recordsFolded: () => volume.stats.folded,
      ...(cw ? { sink: () => cw.readStats() } : {}),
    },
    [putLatency],
  );
  const cwConfig = config.sinks.cloudwatch;
  const published = new Map<LossKind, number>();
  const metrics =
    cwConfig && config.metrics.enabled
      ? new MetricsPublisher({
          region: cloudWatchRegion(cwConfig),
          ...(cwConfig.endpoint ? { endpoint: cwConfig.endpoint } : {}),
          namespace: config.metrics.namespace,
          clusterName: config.clusterName,
          nodeName: config.nodeName,
          pushIntervalMs: config.metrics.pushIntervalSeconds * 1000,
          logger,
          now,
          journal: fileJournal(config.spool.dir, logger),
          sources: {
            takeDeniedPackets: () => table.takeDeniedPackets(),
            ...(config.metrics.droppedPackets && kernel.listener
              ? { takeDropped: () => router.takeDropped() }
              : {}),
            healthy: () => health().healthy,
            takeLost: () => {
              const out = new Map<LossKind, number>();
              for (const kind of LOSS_KINDS) {
                const total = ledger.total(kind);
                out.set(kind, total - (published.get(kind) ?? 0));
                published.set(kind, total);
              }
              return out;
            },
          },
        })
      : undefined;
  let http: { address: string; close(): Promise<void> } | undefined;
  try {
    await eventsSink?.start();
    await core.start();
    captureOpen = true;
    if (config.http.listen) {
      http = await startHttpServer({ listen: config.http.listen, registry, health });
      logger.info({ address: http.address }, 'serving /healthz /readyz /metrics');
    }
    metrics?.start();
  } catch (err) {
    kernel.listener?.close();
    await capture.close().catch(() => {});
    await eventsSink?.close().catch(() => {});
    await source?.close();
    await policies?.close();
    await http?.close();
    throw err;
  }
  await (deps.stopSignal ?? signalStop());
  logger.info('stopping: flushing the partial interval');
  stopping = true;
  await core.stop();
  if (kernel.listener && kernel.source === 'both') {
    logger.info(
      { ...router.join.stats, matchWindowMs: config.denies.matchWindowMs },
      'NFLOG/kernel drop matching',
    );
  }
  kernel.listener?.close();
  await eventsSink?.close();
  // The last push reports health as it was while running: a rolling restart is not an unhealthy node.
  await metrics?.stop();
  captureOpen = false;
  await http?.close();
  await source?.close();
  await policies?.close();
}
