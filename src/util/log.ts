import { type Logger, pino } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr (stdout is for records in `--stdout` and capture modes). */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.FLOWTRAIL_LOG_LEVEL ?? 'info',
      name: options.name ?? 'flowtrail',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that drops everything, for tests and pure code paths. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
