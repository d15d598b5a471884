/** One encoded record with the time CloudWatch should file it under. */
export interface EncodedRecord {
  /** The record's line, without newline. */
  readonly line: string;
  /** The record's endTime in ms: CloudWatch event timestamp. */
  readonly timestampMs: number;
}

export interface SinkHealth {
  readonly healthy: boolean;
  /** Why not healthy (shown in /readyz). */
  readonly reason?: string;
}

/**
 * Where records go. `write` is called once per flush with that interval's
 * records, encoded; it must not lose them once it resolved (durable sinks
 * spool first).
 */
export interface Sink {
  readonly name: string;
  start(): Promise<void>;
  write(lines: readonly EncodedRecord[]): Promise<void>;
  /** Deliver or persist everything accepted so far, then release resources. Idempotent. */
  close(): Promise<void>;
  health(): SinkHealth;
}
