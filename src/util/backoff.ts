/** Capped exponential growth: min(cap, base·2^min(attempt, maxExponent)). The one backoff formula. */
export function exponentialMs(
  attempt: number,
  baseMs: number,
  capMs: number,
  maxExponent = 20,
): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, maxExponent));
}
