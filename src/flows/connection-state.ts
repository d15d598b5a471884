/**
 * One tracked connection's reporting lifecycle, as a union instead of flags.
 *
 *   starting ──flush──▶ open ──DESTROY / vanished / TIME_WAIT──▶ ended ──flush──▶ (removed)
 *      └──────────────DESTROY before the first flush──────────────▶ ended{fromStart}
 *   remainder: a late DESTROY of a connection already completed (its
 *              tombstone says what was reported): only the rest is reported,
 *              neither started nor completed again; removed after that flush.
 *
 * Pure functions; the flow table keeps each connection's phase as a
 * PhaseKind number in its ConnStore.
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
  if (!isOpen(p)) return p;
  return { kind: 'ended', atMs, startPending: p.kind === 'starting' };
}

export function isOpen(p: ConnPhase): boolean {
  return isOpenKind(phaseKindOf(p));
}

/** Starting and open phases are open (their traffic still counts); ended and remainder ones are not. */
export function isOpenKind(kind: PhaseKind): boolean {
  return kind <= PhaseKind.Open;
}

function hasTraffic(d: Counters): boolean {
  return d.po > 0 || d.bo > 0 || d.pr > 0 || d.br > 0;
}

/**
 * The phase kinds as small integers: the flow table keeps a connection's
 * phase in its numeric arrays (kind, the end time, whether its start is
 * still to report), not as an object per connection.
 */
export const PhaseKind = { Starting: 0, Open: 1, Ended: 2, Remainder: 3 } as const;
export type PhaseKind = (typeof PhaseKind)[keyof typeof PhaseKind];

export function phaseKindOf(p: ConnPhase): PhaseKind {
  switch (p.kind) {
    case 'starting':
      return PhaseKind.Starting;
    case 'open':
      return PhaseKind.Open;
    case 'ended':
      return PhaseKind.Ended;
    case 'remainder':
      return PhaseKind.Remainder;
  }
}

/** A flush decision the caller owns and lets flushStepInto overwrite (the per-connection flush path). */
export interface MutableFlushStep {
  delta: { po: number; bo: number; pr: number; br: number };
  started: boolean;
  completed: boolean;
  report: boolean;
  /** false: the connection leaves the table after this flush; true: it stays, open. */
  stays: boolean;
}

export function newFlushStep(): MutableFlushStep {
  return {
    delta: { po: 0, bo: 0, pr: 0, br: 0 },
    started: false,
    completed: false,
    report: false,
    stays: false,
  };
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
  const s = flushStepInto(
    newFlushStep(),
    phaseKindOf(phase),
    phase.kind === 'ended' && phase.startPending,
    startMs,
    intervalStartMs,
    current.po - reported.po,
    current.bo - reported.bo,
    current.pr - reported.pr,
    current.br - reported.br,
  );
  return {
    delta: s.delta,
    started: s.started,
    completed: s.completed,
    report: s.report,
    next: s.stays ? OPEN : undefined,
  };
}

/**
 * flushStep for a phase given as its kind (and, when ended, whether its
 * start is still to report), from the delta (current − reported), written
 * into `out` (read it before the next call): no allocation per connection.
 */
export function flushStepInto(
  out: MutableFlushStep,
  kind: PhaseKind,
  startPending: boolean,
  startMs: number,
  intervalStartMs: number,
  dpo: number,
  dbo: number,
  dpr: number,
  dbr: number,
): MutableFlushStep {
  const d = out.delta;
  d.po = dpo;
  d.bo = dbo;
  d.pr = dpr;
  d.br = dbr;
  const traffic = hasTraffic(d);
  switch (kind) {
    case PhaseKind.Starting:
      out.started = startMs >= intervalStartMs;
      out.completed = false;
      out.report = traffic || out.started;
      out.stays = true;
      break;
    case PhaseKind.Open:
      out.started = false;
      out.completed = false;
      out.report = traffic;
      out.stays = true;
      break;
    case PhaseKind.Ended:
      out.started = startPending && startMs >= intervalStartMs;
      out.completed = true;
      out.report = true;
      out.stays = false;
      break;
    case PhaseKind.Remainder:
      out.started = false;
      out.completed = false;
      out.report = traffic;
      out.stays = false;
      break;
  }
  return out;
}
