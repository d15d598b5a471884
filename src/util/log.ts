import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout is for records in `--stdout` and
 * capture modes), the level as a word (`"level":"info"`): what log pipelines
 * (the CloudWatch agent, Fluent Bit's JSON parser) match on, where pino's
 * default numbers (30) mean nothing.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.FLOWTRAIL_LOG_LEVEL ?? 'info',
      name: options.name ?? 'flowtrail',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that drops everything, for tests and pure code paths. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
