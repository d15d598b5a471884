/**
 * Turns the components' counters into loss entries once per flush interval.
 * Kernel-side losses (netlink drops, shed flows, hidden connections) affect
 * the traffic of the interval being closed, so that interval is their
 * window. Sink-side losses know their own records' times and are noted by
 * the sink directly (CloudWatchLogsSinkOptions.onLoss).
 */
import { CounterDelta, hiddenConnections, type LossLedger } from './ledger.js';

export interface LossReaders {
  /** Messages the kernel dropped on the conntrack event socket (sk_drops). */
  conntrackDrops(): number;
  /** … on the NFLOG socket. */
  nflogDrops(): number;
  flowsShed(): number;
  foundInDump(): number;
  unknownDestroys(): number;
  vanished(): number;
  destroysMissed(): number;
  /** Kernel counters the flow table could not reconcile (FlowTableStats.inconsistent). */
  inconsistent(): number;
}

export class LossWatch {
  private readonly d: { [K in keyof LossReaders]: CounterDelta };
  // Hidden connections are settled one interval late: a message dropped just
  // before a flush is found by the dump that follows it, in the next interval.
  private droppedSettled = 0;
  private droppedPending = 0;
  /** Cumulative accounting of dropped messages, by how each showed up. */
  private readonly explained = {
    foundInDump: 0,
    unknownDestroys: 0,
    vanished: 0,
    destroysMissed: 0,
  };
  private hiddenNoted = 0;
  private pendingWindow: { windowStartMs: number; windowEndMs: number } | undefined;

  constructor(
    private readonly ledger: LossLedger,
    readers: LossReaders,
  ) {
    this.d = {
      conntrackDrops: new CounterDelta(readers.conntrackDrops),
      nflogDrops: new CounterDelta(readers.nflogDrops),
      flowsShed: new CounterDelta(readers.flowsShed),
      foundInDump: new CounterDelta(readers.foundInDump),
      unknownDestroys: new CounterDelta(readers.unknownDestroys),
      vanished: new CounterDelta(readers.vanished),
      destroysMissed: new CounterDelta(readers.destroysMissed),
      inconsistent: new CounterDelta(readers.inconsistent),
    };
  }

  /** Notes what was lost during [startMs, endMs), after that interval's dump was applied. */
  onInterval(startMs: number, endMs: number, nowMs: number): void {
    const window = { windowStartMs: startMs, windowEndMs: endMs, notedAtMs: nowMs };
    const dropped = this.d.conntrackDrops.take();
    const found = this.d.foundInDump.take();
    const unknown = this.d.unknownDestroys.take();
    const vanished = this.d.vanished.take();
    const destroysMissed = this.d.destroysMissed.take();
    this.ledger.note({
      kind: 'ConntrackOverrun',
      count: dropped,
      ...window,
      detail: `conntrack events dropped by the kernel; ${found} connections recovered by dump, ${unknown} from their DESTROY, ${vanished + destroysMissed} ended unseen (raise conntrack.receiveBufferBytes)`,
    });
    // Everything dropped up to the last interval, against everything explained up to now.
    this.droppedSettled += this.droppedPending;
    this.droppedPending = dropped;
    const e = this.explained;
    e.foundInDump += found;
    e.unknownDestroys += unknown;
    e.vanished += vanished;
    e.destroysMissed += destroysMissed;
    const hidden = hiddenConnections({ droppedMessages: this.droppedSettled, ...e });
    if (hidden > this.hiddenNoted && this.pendingWindow) {
      this.ledger.note({
        kind: 'HiddenConnections',
        count: hidden - this.hiddenNoted,
        ...this.pendingWindow,
        notedAtMs: nowMs,
        detail:
          'at most this many connections opened and closed inside an overrun window unseen (an upper bound)',
      });
      this.hiddenNoted = hidden;
    }
    if (dropped > 0) this.pendingWindow = { windowStartMs: startMs, windowEndMs: endMs };
    this.ledger.note({
      kind: 'NflogOverrun',
      count: this.d.nflogDrops.take(),
      ...window,
      detail:
        'NFLOG packets dropped by the kernel: denied packets not counted (raise nflog.receiveBufferBytes)',
    });
    this.ledger.note({
      kind: 'FlowsShed',
      count: this.d.flowsShed.take(),
      ...window,
      detail: 'connections not tracked: flowLogs.maxTrackedFlows reached',
    });
    this.ledger.note({
      kind: 'Inconsistent',
      count: this.d.inconsistent.take(),
      ...window,
      detail:
        'connections whose kernel counters fell below what was already held or reported (two taken for one): their records may be off',
    });
  }
}
