/**
 * Where records are read from, for `report` and `estimate`: record files
 * (the file sink's, gzip or not) and CloudWatch Logs (FilterLogEvents over a
 * time range). Lines that are not records are counted and the first few kept
 * with where they were, never fatal.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { decodeRecord, RecordFormatError } from '../format/codec.js';
import type { FlowRecord } from '../format/record.js';
import { FlowtrailError } from '../util/errors.js';

export interface BadLine {
  where: string;
  message: string;
}

export function decodeAll(
  lines: Iterable<[string, string]>,
  bad: BadLine[],
  counter: { bad: number },
): FlowRecord[] {
  const out: FlowRecord[] = [];
  for (const [where, line] of lines) {
    if (line.trim() === '') continue;
    try {
      out.push(decodeRecord(line));
    } catch (err) {
      counter.bad++;
      if (bad.length < 5)
        bad.push({ where, message: err instanceof RecordFormatError ? err.message : String(err) });
    }
  }
  return out;
}

export function* fileLines(path: string): Generator<[string, string]> {
  let text: string;
  try {
    const bytes = readFileSync(path);
    // gzip by its magic bytes (rotated files are often compressed), whatever the name.
    text = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new FlowtrailError(
      'ERR_INPUT',
      `cannot read ${path} (${code}${code.startsWith('Z_') ? ': not valid gzip' : ''})`,
      { path, code },
    );
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) yield [`${path}:${i + 1}`, lines[i]!];
}

export async function cloudWatchLines(
  logGroup: string,
  startMs: number,
  endMs: number,
  flags: { region: string; endpoint?: string | undefined; logStreamNames?: string[] },
): Promise<[string, string][]> {
  const logs = new CloudWatchLogsClient({
    region: flags.region,
    ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
  });
  const out: [string, string][] = [];
  let token: string | undefined;
  let pages = 0;
  try {
    do {
      const r = await logs.send(
        new FilterLogEventsCommand({
          logGroupName: logGroup,
          ...(flags.logStreamNames ? { logStreamNames: flags.logStreamNames } : {}),
          startTime: startMs,
          endTime: endMs,
          nextToken: token,
        }),
      );
      for (const e of r.events ?? [])
        out.push([`${e.logStreamName ?? '?'}@${e.timestamp}`, e.message ?? '']);
      token = r.nextToken;
      pages++;
      if (process.stderr.isTTY)
        process.stderr.write(`\rreading ${logGroup}: ${out.length} events (${pages} pages)`);
    } while (token);
  } finally {
    logs.destroy();
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  return out;
}
