/**
 * Flush intervals. Records carry the bounds of the interval they cover, in
 * Unix seconds, so intervals are aligned to whole seconds and contiguous: each
 * starts where the previous ended. The first interval starts when the agent
 * starts; the last (at shutdown) is cut short at the stop time.
 */
export interface FlushInterval {
  readonly startMs: number;
  readonly endMs: number;
}

export class FlushClock {
  private startMs: number;

  constructor(
    startMs: number,
    private readonly intervalMs: number,
  ) {
    this.startMs = Math.floor(startMs / 1000) * 1000;
  }

  /** Milliseconds from `nowMs` until the current interval is due. */
  delayUntilDue(nowMs: number): number {
    return Math.max(0, this.startMs + this.intervalMs - nowMs);
  }

  /**
   * Closes the current interval at `nowMs` (rounded down to a second, never
   * before its start) and opens the next one there.
   */
  close(nowMs: number): FlushInterval {
    const endMs = Math.max(this.startMs, Math.floor(nowMs / 1000) * 1000);
    const interval = { startMs: this.startMs, endMs };
    this.startMs = endMs;
    return interval;
  }
}
