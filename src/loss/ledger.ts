/**
 * Every loss the agent can know of, in one place: what kind, how many, and
 * the time window of traffic it affects. Netlink is lossy and sinks can
 * overflow; a silent gap in the records destroys an auditor's trust, so each
 * loss becomes a Prometheus counter, a LostEvents metric (Kind dimension)
 * and a JSON line in the node's `<nodeName>_Events` stream.
 *
 * Pure: callers pass counts and times in; consumers read totals (counters)
 * or take the entries noted since they last looked (the events stream).
 */

/** The kinds of loss, as they appear in the Kind dimension and the events stream. */
export const LOSS_KINDS = [
  /** conntrack event messages the kernel dropped on our socket (sk_drops). */
  'ConntrackOverrun',
  /** connections opened and closed inside an overrun window: no record can show them (estimated). */
  'HiddenConnections',
  /** NFLOG packet messages the kernel dropped on our socket: denied packets not counted. */
  'NflogOverrun',
  /** connections not tracked because flowLogs.maxTrackedFlows was reached. */
  'FlowsShed',
  /** records dropped from a full spool (spool.maxBytes) before delivery. */
  'SpoolFull',
  /** records lost to a corrupt spool segment. */
  'SpoolCorrupt',
  /** records CloudWatch rejected, or that fell outside the window it accepts. */
  'Rejected',
  /**
   * kernel counters that contradicted what the flow table held for a
   * connection (below what it had or had reported): two connections taken
   * for one, whose records may be off. Never expected with
   * nf_conntrack_timestamp=1; a count here is a defect to report.
   */
  'Inconsistent',
] as const;
export type LossKind = (typeof LOSS_KINDS)[number];

export interface LossEntry {
  readonly kind: LossKind;
  readonly count: number;
  /** Traffic between these times (ms) is incomplete on this node. */
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** When the agent noticed (ms). */
  readonly notedAtMs: number;
  readonly detail?: string;
}

export class LossLedger {
  private readonly totals = new Map<LossKind, number>(LOSS_KINDS.map((k) => [k, 0]));
  private pending: LossEntry[] = [];

  /** Notes `count` lost items of `kind` affecting [windowStartMs, windowEndMs]. */
  note(entry: LossEntry): void {
    if (!(entry.count > 0)) return;
    this.totals.set(entry.kind, (this.totals.get(entry.kind) ?? 0) + entry.count);
    this.pending.push(entry);
  }

  /** Everything lost of `kind` since the agent started. */
  total(kind: LossKind): number {
    return this.totals.get(kind) ?? 0;
  }

  /** The entries noted since the last call, oldest first. */
  take(): LossEntry[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}

/**
 * Reads a monotonically growing counter and returns what it grew by since
 * the last read (0 the first time when `fromZero` is false: a counter's
 * value at start-up, e.g. a reopened spool's, is not a new loss).
 */
export class CounterDelta {
  private last: number | undefined;
  constructor(
    private readonly read: () => number,
    fromZero = true,
  ) {
    if (!fromZero) this.last = read();
  }
  take(): number {
    const v = this.read();
    const d = this.last === undefined ? v : v - this.last;
    this.last = v;
    return Math.max(d, 0);
  }
}

/** The JSON line written to the `<nodeName>_Events` stream for one loss. */
export function encodeLossEvent(
  e: LossEntry,
  ids: { clusterName: string; nodeName: string },
): string {
  return JSON.stringify({
    event: 'loss',
    cluster: ids.clusterName,
    node: ids.nodeName,
    kind: e.kind,
    count: e.count,
    windowStart: new Date(e.windowStartMs).toISOString(),
    windowEnd: new Date(e.windowEndMs).toISOString(),
    windowStartMs: e.windowStartMs,
    windowEndMs: e.windowEndMs,
    ...(e.detail ? { detail: e.detail } : {}),
  });
}

/**
 * Connections hidden by overruns, from the message accounting of one flush
 * interval. With NEW and DESTROY subscribed, every dropped message is the
 * NEW or the DESTROY of some connection, and each such connection shows up
 * exactly one way: a NEW lost but the connection still in the kernel's table
 * (open or lingering in TIME_WAIT) is found by the next dump (`foundInDump`);
 * a NEW lost but its DESTROY received is an unknown DESTROY
 * (`unknownDestroys`, counted exactly from its counters); a DESTROY lost is a
 * connection that vanished from the dump while open (`vanished`) or after it
 * was completed (`destroysMissed`). What remains are connections whose NEW
 * and DESTROY were both lost: two messages each. An upper bound: a lost
 * message the agent cannot attribute (e.g. one dropped just before a
 * kill -9, or a DESTROY whose connection it never tracked) counts as hidden;
 * races between a dump and queued events pull it the other way. The soak
 * compares it with the truth (docs/benchmarks.md).
 */
export function hiddenConnections(a: {
  droppedMessages: number;
  foundInDump: number;
  unknownDestroys: number;
  vanished: number;
  destroysMissed: number;
}): number {
  if (a.droppedMessages <= 0) return 0;
  const rest =
    a.droppedMessages - a.foundInDump - a.unknownDestroys - a.vanished - a.destroysMissed;
  return rest > 0 ? Math.floor(rest / 2) : 0;
}
