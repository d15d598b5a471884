/**
 * How the report shows numbers to a reader: counts with thousands
 * separators, byte counts in binary units (KiB, MiB, GiB…), IANA protocol
 * numbers by name, Unix seconds as ISO times. Pure.
 */

export const formatCount = (n: number): string => n.toLocaleString('en-US');

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * `1536` → `1.5 KiB`, `94000` → `91.8 KiB`, `950000` → `928 KiB`, `512` →
 * `512 B`: one decimal below 100, none above; binary units (1 KiB = 1,024 B).
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0)
    throw new RangeError(`bytes must be a finite count ≥ 0, got ${bytes}`);
  let unit = 0;
  let v = bytes;
  while (v >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  // 1023.7 KiB would print as "1024 KiB": carry into the next unit instead.
  if (Math.round(v) >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${v.toFixed(v < 100 ? 1 : 0)} ${BYTE_UNITS[unit]}`;
}

/** Short counts for axes: 950, 1.2k, 34k, 1.5M. */
export function formatShortCount(n: number): string {
  if (n < 1000) return String(n);
  for (const [d, s] of [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (n >= d) {
      const v = n / d;
      return `${Number(v.toFixed(v < 10 ? 1 : 0))}${s}`;
    }
  }
  return String(n);
}

/** IANA protocol numbers a flow log meets, by their usual names. */
const PROTOCOLS: Readonly<Record<number, string>> = {
  1: 'ICMP',
  2: 'IGMP',
  4: 'IPIP',
  6: 'TCP',
  17: 'UDP',
  41: 'IPv6',
  47: 'GRE',
  50: 'ESP',
  51: 'AH',
  58: 'ICMPv6',
  89: 'OSPF',
  103: 'PIM',
  112: 'VRRP',
  132: 'SCTP',
  136: 'UDPLite',
};

/** `6` → `TCP`; a number without a well-known name stays a number (`proto 99`). */
export function protoName(proto: number): string {
  return PROTOCOLS[proto] ?? `proto ${proto}`;
}

/** The protocol number for a name (`TCP`, `udp`) or a numeric string; undefined when unknown. */
export function protoNumber(name: string): number | undefined {
  if (/^\d{1,3}$/.test(name)) {
    const n = Number(name);
    return n <= 255 ? n : undefined;
  }
  const upper = name.toUpperCase();
  for (const [n, s] of Object.entries(PROTOCOLS)) if (s.toUpperCase() === upper) return Number(n);
  return undefined;
}

export const isoTime = (t: number): string =>
  new Date(t * 1000).toISOString().replace('.000Z', 'Z');
