/**
 * One tracked connection's reporting lifecycle, as a union instead of flags.
 *
 *   starting ──flush──▶ open ──DESTROY / vanished / TIME_WAIT──▶ ended ──flush──▶ (removed)
 *      └──────────────DESTROY before the first flush──────────────▶ ended{fromStart}
 *   remainder: a late DESTROY of a connection already completed (its
 *              tombstone says what was reported): only the rest is reported,
 *              neither started nor completed again; removed after that flush.
 *
 * Pure functions; the flow table owns the Map of connections.
 */

/** Packets/bytes per direction (o = original, r = reply). */
export interface Counters {
  readonly po: number;
  readonly bo: number;
  readonly pr: number;
  readonly br: number;
}

export const ZERO_COUNTERS: Counters = Object.freeze({ po: 0, bo: 0, pr: 0, br: 0 });

export type ConnPhase =
  /** Open; its start has not been reported yet (it began while we listened). */
  | { readonly kind: 'starting' }
  /** Open; its start was reported, or it began before we listened. */
  | { readonly kind: 'open' }
  /** Ended (DESTROY, vanished from a dump, or TIME_WAIT/CLOSE); not reported as completed yet. */
  | { readonly kind: 'ended'; readonly atMs: number; readonly startPending: boolean }
  /** A late DESTROY after the connection was already completed: report only what is left. */
  | { readonly kind: 'remainder'; readonly atMs: number };

/** What one flush reports for a connection, and the phase it moves to. */
export interface FlushStep {
  readonly delta: Counters;
  readonly started: boolean;
  readonly completed: boolean;
  /** Whether anything is reported for this connection in this interval. */
  readonly report: boolean;
  /** undefined: the connection leaves the table after this flush. */
  readonly next: ConnPhase | undefined;
}

export const OPEN: ConnPhase = Object.freeze({ kind: 'open' });
export const STARTING: ConnPhase = Object.freeze({ kind: 'starting' });

/** The phase after the connection ended at `atMs` (idempotent for ended phases). */
export function endPhase(p: ConnPhase, atMs: number): ConnPhase {
  if (p.kind === 'starting') return { kind: 'ended', atMs, startPending: true };
  if (p.kind === 'open') return { kind: 'ended', atMs, startPending: false };
  return p;
}

export function isOpen(p: ConnPhase): boolean {
  return p.kind === 'starting' || p.kind === 'open';
}

export function subtract(a: Counters, b: Counters): Counters {
  return { po: a.po - b.po, bo: a.bo - b.bo, pr: a.pr - b.pr, br: a.br - b.br };
}

/** Kernel counters only grow; a stale reading never moves them back. */
export function maxCounters(a: Counters, b: Counters): Counters {
  if (b.po <= a.po && b.bo <= a.bo && b.pr <= a.pr && b.br <= a.br) return a;
  if (b.po >= a.po && b.bo >= a.bo && b.pr >= a.pr && b.br >= a.br) return b;
  return {
    po: Math.max(a.po, b.po),
    bo: Math.max(a.bo, b.bo),
    pr: Math.max(a.pr, b.pr),
    br: Math.max(a.br, b.br),
  };
}

function hasTraffic(d: Counters): boolean {
  return d.po > 0 || d.bo > 0 || d.pr > 0 || d.br > 0;
}

/**
 * The flush decision for one connection in the interval starting at
 * `intervalStartMs`. A start is counted only when it falls in the interval
 * (a connection the start-up dump found is older). Only connections with a
 * delta, a start or an end in the interval are reported: an idle open
 * connection produces no record (it would carry zeros).
 */
export function flushStep(
  phase: ConnPhase,
  startMs: number,
  current: Counters,
  reported: Counters,
  intervalStartMs: number,
): FlushStep {
  const delta = subtract(current, reported);
  const traffic = hasTraffic(delta);
  switch (phase.kind) {
    case 'starting': {
      const started = startMs >= intervalStartMs;
      return { delta, started, completed: false, report: traffic || started, next: OPEN };
    }
    case 'open':
      return { delta, started: false, completed: false, report: traffic, next: OPEN };
    case 'ended': {
      const started = phase.startPending && startMs >= intervalStartMs;
      return { delta, started, completed: true, report: true, next: undefined };
    }
    case 'remainder':
      return { delta, started: false, completed: false, report: traffic, next: undefined };
  }
}
