/** One doctor check's outcome: what was found and, when it is not ok, the fix. */
export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  /** Stable id, e.g. kernel.acct (tests and --json rely on it). */
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  readonly found: string;
  readonly fix?: string;
}

export const ok = (id: string, title: string, found: string): CheckResult => ({
  id,
  title,
  status: 'ok',
  found,
});
export const fail = (id: string, title: string, found: string, fix: string): CheckResult => ({
  id,
  title,
  status: 'fail',
  found,
  fix,
});
export const warn = (id: string, title: string, found: string, fix: string): CheckResult => ({
  id,
  title,
  status: 'warn',
  found,
  fix,
});
export const skip = (id: string, title: string, why: string): CheckResult => ({
  id,
  title,
  status: 'skip',
  found: why,
});

/** The errno name of a failed call (Node's code, or the addon's errno). */
export function errnoOf(err: unknown): string {
  const e = err as { errno?: unknown; code?: unknown; name?: unknown };
  if (typeof e.errno === 'string') return e.errno;
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : 'error';
}
