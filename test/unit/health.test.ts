import { describe, expect, it } from 'vitest';
import { evaluateHealth, type HealthSignals } from '../../src/metrics/health.js';
import { parseListen } from '../../src/metrics/http-server.js';

const NOW = 1_800_000_000_000;
const MAX_DUMP_AGE = 900_000;

function signals(
  over: Partial<{
    open: boolean;
    lastDump: number | undefined;
    synced: boolean;
    sinks: { name: string; healthy: boolean; reason?: string }[];
  }> = {},
): HealthSignals {
  const s = {
    open: true,
    lastDump: (NOW - 60_000) as number | undefined,
    synced: true,
    sinks: [{ name: 'cloudwatch', healthy: true }],
    ...over,
  };
  return {
    captureOpen: () => s.open,
    lastDumpOkMs: () => s.lastDump,
    endpointsSynced: () => s.synced,
    sinks: () => s.sinks,
  };
}

describe('evaluateHealth', () => {
  it('an idle node (no events at all) with an open capture and a recent dump is healthy', () => {
    expect(evaluateHealth(signals(), NOW, MAX_DUMP_AGE)).toEqual({ healthy: true, reasons: [] });
  });

  it('a dump exactly maxDumpAge old is still healthy; one millisecond more is not', () => {
    expect(
      evaluateHealth(signals({ lastDump: NOW - MAX_DUMP_AGE }), NOW, MAX_DUMP_AGE).healthy,
    ).toBe(true);
    expect(
      evaluateHealth(signals({ lastDump: NOW - MAX_DUMP_AGE - 1 }), NOW, MAX_DUMP_AGE),
    ).toEqual({ healthy: false, reasons: ['no conntrack dump succeeded for 900 s'] });
  });

  it('before the first dump the node is not healthy, and says so', () => {
    expect(evaluateHealth(signals({ lastDump: undefined }), NOW, MAX_DUMP_AGE)).toEqual({
      healthy: false,
      reasons: ['no conntrack dump has succeeded yet'],
    });
  });

  it('lists every reason at once, sinks by name', () => {
    const h = evaluateHealth(
      signals({
        open: false,
        synced: false,
        sinks: [
          { name: 'file', healthy: true },
          { name: 'cloudwatch', healthy: false, reason: 'spool 95% full' },
          { name: 'stdout', healthy: false },
        ],
      }),
      NOW,
      MAX_DUMP_AGE,
    );
    expect(h).toEqual({
      healthy: false,
      reasons: [
        'netlink capture is not running',
        'endpoint cache not synced yet',
        'sink cloudwatch: spool 95% full',
        'sink stdout: failing',
      ],
    });
  });

  it('reads the clock it is given, not its own', () => {
    const s = signals({ lastDump: 0 });
    expect(evaluateHealth(s, 1_000, MAX_DUMP_AGE).healthy).toBe(true);
    expect(evaluateHealth(s, MAX_DUMP_AGE + 1, MAX_DUMP_AGE).healthy).toBe(false);
  });
});

describe('parseListen (http.listen)', () => {
  it.each([
    ['127.0.0.1:9099', { host: '127.0.0.1', port: 9099 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
    ['[::1]:9099', { host: '::1', port: 9099 }],
    ['[fd00::1:2]:65535', { host: 'fd00::1:2', port: 65535 }],
  ])('%s', (listen, want) => {
    expect(parseListen(listen)).toEqual(want);
  });

  it.each(['9099', '127.0.0.1', '127.0.0.1:65536', ':9099', '127.0.0.1:http', '[::1]9099'])(
    'refuses %s with ERR_LISTEN naming the value',
    (listen) => {
      expect(() => parseListen(listen)).toThrow(
        expect.objectContaining({ code: 'ERR_LISTEN', context: { listen } }),
      );
    },
  );
});
