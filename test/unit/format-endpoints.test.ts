import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregatedName, EndpointCache } from '../../src/endpoints/cache.js';
import { classifyAddress } from '../../src/endpoints/classify.js';
import { parseEndpointsFile, startFileSource } from '../../src/endpoints/file-source.js';
import {
  decodeRecord,
  encodeRecord,
  formatLabels,
  RecordFormatError,
  safeField,
} from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { silentLogger } from '../../src/util/log.js';

const EXAMPLE =
  '1529529591 1529529892 wep policy-demo nginx-7d98456675-* - wep kube-system kube-dns-7cc87d595-* - - - 17 - 53 1 1 1 dst 1 1 73 119 allow';

describe('record format', () => {
  it('safeField replaces exactly what /\\s/ calls whitespace, in any text', () => {
    const reference = (v: string) => (v === '' ? '-' : v.replace(/\s/g, '_'));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          // Dense in the characters that matter: ASCII space and controls, DEL, Unicode spaces.
          fc.string({
            unit: fc.constantFrom(
              ' ',
              '\t',
              '\n',
              '\x01',
              '\x1f',
              '\x7f',
              '\u00a0',
              '\u2028',
              '\ufeff',
              'a',
              'é',
            ),
          }),
        ),
        (v) => {
          expect(safeField(v)).toBe(reference(v));
        },
      ),
      { numRuns: 2_000 },
    );
    for (const v of [
      'a\u00a0b',
      'a\u2028b',
      'a\ufeffb',
      'a\u3000b',
      'a\x01b',
      'a\x7fb',
      'tab\there',
    ]) {
      expect(safeField(v)).toBe(reference(v));
    }
  });

  it('the DESIGN.md example round-trips exactly', () => {
    const r = decodeRecord(EXAMPLE);
    expect(r).toMatchObject({
      srcName: 'nginx-7d98456675-*',
      proto: 17,
      srcPort: '-',
      dstPort: 53,
      reporter: 'dst',
      bytesOut: 119,
    });
    expect(encodeRecord(r)).toBe(EXAMPLE);
  });

  const field = fc.stringMatching(/^[\x21-\x7e]{1,20}$/);
  const record: fc.Arbitrary<FlowRecord> = fc
    .record({
      startTime: fc.nat(2_000_000_000),
      endTime: fc.nat(2_000_000_000),
      srcType: fc.constantFrom('wep', 'hep', 'ns', 'net'),
      srcNamespace: field,
      srcName: field,
      srcLabels: field,
      dstType: fc.constantFrom('wep', 'hep', 'ns', 'net'),
      dstNamespace: field,
      dstName: field,
      dstLabels: field,
      srcIP: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('-')),
      dstIP: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('-')),
      proto: fc.integer({ min: 0, max: 255 }),
      srcPort: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant('-' as const)),
      dstPort: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant('-' as const)),
      numFlows: fc.nat(1e9),
      numFlowsStarted: fc.nat(1e9),
      numFlowsCompleted: fc.nat(1e9),
      reporter: fc.constantFrom('src', 'dst'),
      packetsIn: fc.nat(),
      packetsOut: fc.nat(),
      bytesIn: fc.maxSafeNat(),
      bytesOut: fc.maxSafeNat(),
      action: fc.constantFrom('allow', 'deny'),
    })
    .map((r) => ({ ...r, endTime: Math.max(r.startTime, r.endTime) }) as FlowRecord);

  it('property: decode(encode(r)) = r, and no field is empty or holds a space', () => {
    fc.assert(
      fc.property(record, (r) => {
        const line = encodeRecord(r);
        const fields = line.split(' ');
        expect(fields).toHaveLength(24);
        for (const f of fields) expect(f).not.toBe('');
        expect(decodeRecord(line)).toEqual(r);
      }),
      { numRuns: 5_000 },
    );
  });

  it('values with spaces or empty are made safe at encode time', () => {
    const r = decodeRecord(EXAMPLE);
    const line = encodeRecord({ ...r, srcNamespace: '', dstName: 'a b\tc' });
    expect(line.split(' ')).toHaveLength(24);
    expect(decodeRecord(line)).toMatchObject({ srcNamespace: '-', dstName: 'a_b_c' });
  });

  it('the 27-field variant appends srcNameAggr dstNameAggr policies', () => {
    const r = {
      ...decodeRecord(EXAMPLE),
      srcNameAggr: 'nginx-*',
      dstNameAggr: 'dns-*',
      policies: 'default.allow',
    };
    const line = encodeRecord(r, { variant: 27 });
    expect(line.split(' ')).toHaveLength(27);
    expect(decodeRecord(line)).toEqual(r);
  });

  it.each([
    ['too few fields', '1 2 3', 'line'],
    ['a count that is not a number', EXAMPLE.replace(' 73 119 ', ' 73 x '), 'bytesOut'],
    ['a bad reporter', EXAMPLE.replace(' dst 1 1 ', ' both 1 1 '), 'reporter'],
    ['a bad action', EXAMPLE.replace(/allow$/, 'accept'), 'action'],
    ['a port out of range', EXAMPLE.replace(' 17 - 53 ', ' 17 - 70000 '), 'dstPort'],
    ['a bad endpoint type', EXAMPLE.replace(' wep kube-system ', ' pod kube-system '), 'dstType'],
    [
      'an endTime before startTime',
      EXAMPLE.replace('1529529591 1529529892', '1529529591 1529529000'),
      'endTime',
    ],
  ])('rejects %s with an error naming the field', (_name, line, fieldName) => {
    try {
      decodeRecord(line);
      throw new Error('no error');
    } catch (err) {
      expect(err).toBeInstanceOf(RecordFormatError);
      expect((err as RecordFormatError).context.field).toBe(fieldName);
    }
  });

  it('every record line docs/format.md shows is a valid record, 27 fields unless it says 24', () => {
    const doc = readFileSync(new URL('../../docs/format.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!);
    let said24 = false;
    let lines = 0;
    for (const line of blocks.flatMap((b) => b.split('\n'))) {
      if (line.startsWith('#')) said24 = /24 fields/.test(line);
      if (!/^\d{10} /.test(line)) continue;
      lines++;
      const r = decodeRecord(line);
      expect(line.split(' ').length, line).toBe(said24 ? 24 : 27);
      expect(encodeRecord(r, { variant: said24 ? 24 : 27 })).toBe(line);
    }
    expect(lines).toBeGreaterThanOrEqual(7);
  });

  it('labels are sorted, escaped, and "-" when off or empty', () => {
    expect(formatLabels({ b: '2', a: 'x y' }, true)).toBe('[a=x_y,b=2]');
    expect(formatLabels({ a: '1' }, false)).toBe('-');
    expect(formatLabels({}, true)).toBe('-');
  });
});

describe('endpoint cache', () => {
  it.each([
    ['10.1.2.3', 'pvt'],
    ['172.20.0.1', 'pvt'],
    ['192.168.1.1', 'pvt'],
    ['100.64.0.1', 'pvt'],
    ['fd12::1', 'pvt'],
    ['169.254.169.254', 'aws'],
    ['fd00:ec2::254', 'aws'],
    ['fd00:ec2:0::254', 'aws'],
    ['203.0.113.10', 'pub'],
    ['8.8.8.8', 'pub'],
    ['2001:db8::1', 'pub'],
  ])('%s is net/%s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
    expect(new EndpointCache({ nodeName: 'n' }).lookup(ip, 0)).toMatchObject({
      type: 'net',
      name: cls,
      namespace: '-',
    });
  });

  it.each([
    ['nginx-7d98456675-x2x7q', undefined, 'nginx-7d98456675-*'],
    ['db-0', undefined, 'db-*'],
    ['standalone', undefined, 'standalone'],
    ['anything', 'backend-6d8f9-', 'backend-6d8f9-*'],
  ])('aggregated name of %s', (name, gen, expected) => {
    expect(aggregatedName(name, gen)).toBe(expected);
  });

  it('attributes an IP by time when a pod is deleted and its IP reused', () => {
    const c = new EndpointCache({ nodeName: 'node-1', graceMs: 60_000 });
    c.upsertPod({ namespace: 'a', name: 'old', ips: ['10.244.0.5'], nodeName: 'node-1' }, 1_000);
    c.deletePod({ namespace: 'a', name: 'old' }, 5_000);
    c.upsertPod({ namespace: 'b', name: 'new', ips: ['10.244.0.5'], nodeName: 'node-2' }, 6_000);
    expect(c.lookup('10.244.0.5', 2_000)).toMatchObject({
      namespace: 'a',
      name: 'old',
      local: true,
    });
    expect(c.lookup('10.244.0.5', 5_500)).toMatchObject({ name: 'old' }); // grace: gone but attributable
    expect(c.lookup('10.244.0.5', 7_000)).toMatchObject({
      namespace: 'b',
      name: 'new',
      local: false,
    });
    c.prune(200_000);
    expect(c.lookup('10.244.0.5', 2_000)).toMatchObject({ name: 'new' });
  });

  it('host-network and finished pods hold no IP; nodes are host endpoints', () => {
    const c = new EndpointCache({ nodeName: 'node-1' });
    c.upsertNode({ name: 'node-1', ips: ['10.0.0.1'] }, 0);
    c.upsertPod({ namespace: 'k', name: 'proxy', ips: ['10.0.0.1'], hostNetwork: true }, 0);
    c.upsertPod({ namespace: 'k', name: 'job', ips: ['10.244.0.9'], phase: 'Succeeded' }, 0);
    expect(c.lookup('10.0.0.1', 1)).toMatchObject({ type: 'hep', name: 'node-1', local: true });
    expect(c.lookup('10.244.0.9', 1)).toMatchObject({ type: 'net', name: 'pvt' });
  });

  it('the endpoints file reloads on change and a bad file keeps the last good state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-ep-'));
    const path = join(dir, 'endpoints.yaml');
    writeFileSync(path, 'pods:\n  - { namespace: a, name: p1, ip: 10.244.0.1, node: n }\n');
    const cache = new EndpointCache({ nodeName: 'n' });
    let t = 1_000;
    const src = await startFileSource({
      path,
      cache,
      logger: silentLogger(),
      now: () => t,
      pollMs: 50,
    });
    try {
      expect(cache.synced).toBe(true);
      expect(cache.lookup('10.244.0.1', t)).toMatchObject({ name: 'p1' });
      t = 2_000;
      writeFileSync(path, 'pods:\n  - { namespace: a, name: p2, ip: 10.244.0.2, node: n }\n');
      await waitUntil(() => src.reloads === 2);
      expect(cache.lookup('10.244.0.2', 2_500)).toMatchObject({ name: 'p2' });
      expect(cache.lookup('10.244.0.1', 1_500)).toMatchObject({ name: 'p1' }); // history kept
      writeFileSync(path, 'pods:\n  - { namespace: a, name: p3, ipp: 10.244.0.3 }\n');
      await waitUntil(() => src.errors === 1);
      expect(cache.lookup('10.244.0.2', 3_000)).toMatchObject({ name: 'p2' });
      // The same bad content is reported once, not on every later look at the file.
      await new Promise((r) => setTimeout(r, 300));
      expect(src.errors).toBe(1);
    } finally {
      await src.close();
    }
  }, 20_000);

  it('a bad endpoints file names the path of the bad key', () => {
    expect(() => parseEndpointsFile('pods:\n  - { namespace: a, ipp: 1 }\n', 'f.yaml')).toThrow(
      /f\.yaml: .*pods\[0\]/,
    );
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
