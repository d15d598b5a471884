/**
 * Node health, from narrow signals (pure; time passed in):
 * - capture: the netlink listeners are open and the last periodic dump
 *   succeeded recently (an idle node receives no events, so silence alone
 *   is not a stall; a dump that keeps failing is);
 * - endpoints: the endpoint cache has synced at least once;
 * - sinks: every sink is delivering, or spooling within bounds.
 * Ready = healthy. Liveness (/healthz) only says the process loop turns.
 */
export interface HealthSignals {
  captureOpen(): boolean;
  /** When the last conntrack dump succeeded (ms), undefined before the first. */
  lastDumpOkMs(): number | undefined;
  endpointsSynced(): boolean;
  sinks(): readonly { name: string; healthy: boolean; reason?: string }[];
}

export interface HealthReport {
  healthy: boolean;
  reasons: string[];
}

export function evaluateHealth(
  s: HealthSignals,
  nowMs: number,
  maxDumpAgeMs: number,
): HealthReport {
  const reasons: string[] = [];
  if (!s.captureOpen()) reasons.push('netlink capture is not running');
  const lastDump = s.lastDumpOkMs();
  if (lastDump === undefined) reasons.push('no conntrack dump has succeeded yet');
  else if (nowMs - lastDump > maxDumpAgeMs) {
    reasons.push(`no conntrack dump succeeded for ${Math.round((nowMs - lastDump) / 1000)} s`);
  }
  if (!s.endpointsSynced()) reasons.push('endpoint cache not synced yet');
  for (const sink of s.sinks())
    if (!sink.healthy) reasons.push(`sink ${sink.name}: ${sink.reason ?? 'failing'}`);
  return { healthy: reasons.length === 0, reasons };
}
