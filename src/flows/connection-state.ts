/**
 * A connection slot's reporting lifecycle, as one small integer (Phase): the
 * ConnStore keeps it in its numeric arrays, not as an object per connection,
 * and the flow table and the tests use the same numbers.
 *
 *   Starting ──flush──▶ Open ──DESTROY / vanished / TIME_WAIT──▶ Ended ──flush──▶ Tomb, or freed if destroyed
 *      └───────────────the same, before the first flush───────────▶ EndedStartPending ──flush──▶ (as Ended)
 *   Remainder: a late DESTROY of a connection already completed (its
 *              tombstone says what was reported): only the rest is reported,
 *              neither started nor completed again; freed after that flush.
 *   Tomb ◀──▶ TombGone: a completed connection remembered; gone once a dump
 *              no longer lists it while its DESTROY has not come (restored
 *              ones start gone, and are not once the start-up dump lists
 *              them); freed at its expiry, a while after it is gone, or when
 *              its late DESTROY makes it a Remainder.
 *
 * Which of a connection's events were read (its NEW, its DESTROY) are facts
 * beside the phase, not phases (ConnStore's HEARD_* bits): they decide which
 * slot a later event belongs to, not what a flush reports.
 *
 * Pure functions.
 */

/** Packets/bytes per direction (o = original, r = reply). */
export interface Counters {
  readonly po: number;
  readonly bo: number;
  readonly pr: number;
  readonly br: number;
}

/** The phases as small integers; Free (0) is a slot holding nothing (arrays start zeroed). */
export const Phase = {
  Free: 0,
  /** Open; its start has not been reported yet (it began while we listened). */
  Starting: 1,
  /** Open; its start was reported, or it began before we listened. */
  Open: 2,
  /** Ended (DESTROY, vanished from a dump, or TIME_WAIT/CLOSE); not reported as completed yet. */
  Ended: 3,
  /** Ended before its start was reported: the next flush reports both. */
  EndedStartPending: 4,
  /** A late DESTROY after the connection was already completed: report only what is left. */
  Remainder: 5,
  /** Completed and reported; remembered (its baseline) for late events and restarts. */
  Tomb: 6,
  /** A tombstone the kernel no longer lists whose DESTROY has not reached us. */
  TombGone: 7,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** Starting and open phases are open (their traffic still counts); the others are not. */
export function isOpenPhase(p: Phase): boolean {
  return p === Phase.Starting || p === Phase.Open;
}

export function isTombPhase(p: Phase): boolean {
  return p >= Phase.Tomb;
}

/** The phase once the connection ended (the same phase when it is not open). */
export function endedPhase(p: Phase): Phase {
  if (p === Phase.Starting) return Phase.EndedStartPending;
  if (p === Phase.Open) return Phase.Ended;
  return p;
}

/**
 * What one flush reports for a connection: the caller owns one and lets
 * decideFlush overwrite it (no allocation per connection; read it before
 * the next call).
 */
export interface FlushStep {
  /** The interval's traffic (current − reported), set by the caller before decideFlush. */
  delta: { po: number; bo: number; pr: number; br: number };
  started: boolean;
  completed: boolean;
  /** Whether anything is reported for this connection in this interval. */
  report: boolean;
  /** false: the connection leaves the table after this flush; true: it stays, open. */
  stays: boolean;
}

export function newFlushStep(): FlushStep {
  return {
    delta: { po: 0, bo: 0, pr: 0, br: 0 },
    started: false,
    completed: false,
    report: false,
    stays: false,
  };
}

function hasTraffic(d: Counters): boolean {
  return d.po > 0 || d.bo > 0 || d.pr > 0 || d.br > 0;
}

/**
 * The flush decision for a connection in `phase` (not free, not a
 * tombstone) begun at `startMs`, in the interval starting at
 * `intervalStartMs`, from `out.delta`. A start is counted only when it falls
 * in the interval (a connection the start-up dump found is older). Only
 * connections with a delta, a start or an end in the interval are reported:
 * an idle open connection produces no record (it would carry zeros).
 */
export function decideFlush(
  out: FlushStep,
  phase: Phase,
  startMs: number,
  intervalStartMs: number,
): FlushStep {
  const traffic = hasTraffic(out.delta);
  switch (phase) {
    case Phase.Starting:
      out.started = startMs >= intervalStartMs;
      out.completed = false;
      out.report = traffic || out.started;
      out.stays = true;
      break;
    case Phase.Open:
      out.started = false;
      out.completed = false;
      out.report = traffic;
      out.stays = true;
      break;
    case Phase.Ended:
    case Phase.EndedStartPending:
      out.started = phase === Phase.EndedStartPending && startMs >= intervalStartMs;
      out.completed = true;
      out.report = true;
      out.stays = false;
      break;
    default:
      // Remainder (tombstones and free slots are never flushed).
      out.started = false;
      out.completed = false;
      out.report = traffic;
      out.stays = false;
      break;
  }
  return out;
}
