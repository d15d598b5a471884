/**
 * MetricsPublisher's unsent points, saved beside the spool: DeniedPackets
 * (and NodeHealthy, LostEvents) held back by a CloudWatch outage survive a
 * crash, kill -9 included, as the records do, so after the restart the
 * alarm sees what the records show. One small JSON file, replaced
 * atomically (write, fsync, rename) whenever the unsent points change, and
 * removed when none are left: nothing is written while CloudWatch answers.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import type { Logger } from '../util/log.js';

export const POINTS_FILE = 'metrics-points.json';

export interface PointsJournal {
  /** The points left unsent by the last run (their own timestamps). */
  load(): MetricDatum[];
  /** Replaces what is saved with `points` (none: the file is removed). */
  save(points: readonly MetricDatum[]): void;
}

interface SavedPoint {
  MetricName: string;
  Unit?: string;
  Value: number;
  TimestampMs: number;
  Dimensions: { Name: string; Value: string }[];
}

function toSaved(d: MetricDatum): SavedPoint {
  return {
    MetricName: d.MetricName ?? '',
    ...(d.Unit ? { Unit: d.Unit } : {}),
    Value: d.Value ?? 0,
    TimestampMs: d.Timestamp instanceof Date ? d.Timestamp.getTime() : Date.now(),
    Dimensions: (d.Dimensions ?? []).map((x) => ({ Name: x.Name ?? '', Value: x.Value ?? '' })),
  };
}

function isSaved(v: unknown): v is SavedPoint {
  const p = v as SavedPoint;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.MetricName === 'string' &&
    typeof p.Value === 'number' &&
    Number.isFinite(p.TimestampMs) &&
    Array.isArray(p.Dimensions) &&
    p.Dimensions.every((x) => typeof x?.Name === 'string' && typeof x?.Value === 'string')
  );
}

/** The journal file `metrics-points.json` in `dir` (the spool directory). */
export function fileJournal(dir: string, logger: Logger): PointsJournal {
  const path = join(dir, POINTS_FILE);
  let saved = false;
  let warned = false;
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return [];
      }
      saved = true;
      try {
        const raw = JSON.parse(text) as { version?: unknown; points?: unknown };
        if (raw.version !== 1 || !Array.isArray(raw.points))
          throw new Error('not a version 1 file');
        return raw.points.filter(isSaved).map((p) => ({
          MetricName: p.MetricName,
          ...(p.Unit ? { Unit: p.Unit as MetricDatum['Unit'] } : {}),
          Value: p.Value,
          Timestamp: new Date(p.TimestampMs),
          Dimensions: p.Dimensions,
        }));
      } catch (err) {
        logger.warn(
          { path, err: (err as Error).message },
          'saved metric points unreadable; they are not sent',
        );
        return [];
      }
    },
    save(points) {
      if (points.length === 0 && !saved) return;
      try {
        if (points.length === 0) {
          rmSync(path, { force: true });
          saved = false;
          return;
        }
        const tmp = `${path}.tmp`;
        const fd = openSync(tmp, 'w');
        try {
          writeSync(fd, JSON.stringify({ version: 1, points: points.map(toSaved) }));
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
        saved = true;
        warned = false;
      } catch (err) {
        if (!warned) {
          logger.warn(
            { path, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
            'cannot save unsent metric points; a crash now would lose them',
          );
        }
        warned = true;
      }
    },
  };
}
