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
  spoolCorrupt(): number;
}

export class LossWatch {
  private readonly d: { [K in keyof LossReaders]: CounterDelta };

  constructor(
    private readonly ledger: LossLedger,
    readers: LossReaders,
  ) {
    // The spool's corrupt count at start-up is a loss found by this run: count it.
    this.d = {
      conntrackDrops: new CounterDelta(readers.conntrackDrops),
      nflogDrops: new CounterDelta(readers.nflogDrops),
      flowsShed: new CounterDelta(readers.flowsShed),
      foundInDump: new CounterDelta(readers.foundInDump),
      unknownDestroys: new CounterDelta(readers.unknownDestroys),
      vanished: new CounterDelta(readers.vanished),
      spoolCorrupt: new CounterDelta(readers.spoolCorrupt),
    };
  }

  /** Notes what was lost during [startMs, endMs), after that interval's dump was applied. */
  onInterval(startMs: number, endMs: number, nowMs: number): void {
    const window = { windowStartMs: startMs, windowEndMs: endMs, notedAtMs: nowMs };
    const dropped = this.d.conntrackDrops.take();
    const found = this.d.foundInDump.take();
    const unknown = this.d.unknownDestroys.take();
    const vanished = this.d.vanished.take();
    this.ledger.note({
      kind: 'ConntrackOverrun',
      count: dropped,
      ...window,
      detail: `conntrack events dropped by the kernel; ${found} connections recovered by dump, ${unknown} from their DESTROY, ${vanished} ended unseen (raise conntrack.receiveBufferBytes)`,
    });
    this.ledger.note({
      kind: 'HiddenConnections',
      count: hiddenConnections({
        droppedMessages: dropped,
        foundInDump: found,
        unknownDestroys: unknown,
        vanished,
      }),
      ...window,
      detail: 'connections opened and closed inside an overrun window (lower bound)',
    });
    this.ledger.note({
      kind: 'NflogOverrun',
      count: this.d.nflogDrops.take(),
      ...window,
      detail: 'NFLOG packets dropped by the kernel: denied packets not counted',
    });
    this.ledger.note({
      kind: 'FlowsShed',
      count: this.d.flowsShed.take(),
      ...window,
      detail: 'connections not tracked: flowLogs.maxTrackedFlows reached',
    });
    this.ledger.note({
      kind: 'SpoolCorrupt',
      count: this.d.spoolCorrupt.take(),
      ...window,
      detail: 'records lost to a corrupt spool segment (their times are unknown)',
    });
  }
}
