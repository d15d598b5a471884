/**
 * Routes denied packets from the two deny sources into the flow table,
 * per `denies.source`:
 *  - nflog:  NFLOG deny packets only (the kernel program is not loaded);
 *  - kernel: kernel drops with a policy reason only; NFLOG packets still
 *            bring allow-policy names, their deny verdicts are not counted;
 *  - both:   both, with each NFLOG-logged iptables drop counted once
 *            (join.ts). TC and cgroup drops never have an NFLOG copy.
 * Every kernel drop is also counted per reason; those that are not policy
 * denies are the DroppedPackets metric. Pure: time is passed in.
 */
import type { NflogPacket } from '../nflog/types.js';
import { DenyJoin } from './join.js';
import { DropCounts, isPolicyReason } from './reasons.js';
import type { KernelDrop } from './types.js';

export type DenySource = 'nflog' | 'kernel' | 'both';

export interface DenyTablePort {
  onNflog(packets: readonly NflogPacket[], nowMs: number): void;
  onKernelDenies(drops: readonly KernelDrop[], nowMs: number): void;
}

export interface DenyRouterStats {
  /** Kernel policy drops without IPv4 addresses (IPv6, non-IP): counted per reason only. */
  policyDropsNotIpv4: number;
}

export class DenyRouter {
  readonly counts = new DropCounts();
  /** Reasons that are not policy denies, since the last take (DroppedPackets). */
  private readonly other = new DropCounts();
  readonly join: DenyJoin;
  readonly stats: DenyRouterStats = { policyDropsNotIpv4: 0 };

  constructor(
    readonly source: DenySource,
    private readonly table: DenyTablePort,
    matchWindowMs: number,
  ) {
    this.join = new DenyJoin(matchWindowMs);
  }

  nflog(packets: readonly NflogPacket[], nowMs: number): void {
    if (this.source === 'kernel') {
      const kept = packets.filter((p) => p.verdict?.action !== 'deny');
      if (kept.length > 0) this.table.onNflog(kept, nowMs);
    } else {
      this.table.onNflog(packets, nowMs);
    }
    if (this.source === 'both') {
      const denies = packets.filter((p) => p.verdict?.action === 'deny');
      if (denies.length > 0) this.join.noteNflogDenies(denies, nowMs);
    }
    this.release(nowMs);
  }

  kernel(drops: readonly KernelDrop[], nowMs: number): void {
    if (this.source === 'nflog') return;
    const now: KernelDrop[] = [];
    const toJoin: KernelDrop[] = [];
    for (const d of drops) {
      this.counts.add(d.reasonName);
      if (!isPolicyReason(d.reasonName)) {
        this.other.add(d.reasonName);
        continue;
      }
      if (d.ipVersion !== 4) {
        this.stats.policyDropsNotIpv4++;
        continue;
      }
      if (this.source === 'both' && d.reasonName === 'NETFILTER_DROP') toJoin.push(d);
      else now.push(d);
    }
    if (toJoin.length > 0) this.join.offerKernel(toJoin, nowMs);
    if (now.length > 0) this.table.onKernelDenies(now, nowMs);
    this.release(nowMs);
  }

  /** Counts held iptables drops whose NFLOG copy did not come in time (all of them with `all`, at stop). */
  release(nowMs: number, all = false): void {
    const out = this.join.release(nowMs, all);
    if (out.length > 0) this.table.onKernelDenies(out, nowMs);
  }

  /** Drops that are not policy denies since the last call, by reason (the DroppedPackets metric). */
  takeDropped(): Map<string, number> {
    return this.other.take();
  }
}
