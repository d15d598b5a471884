/**
 * Whether this process may use netfilter netlink: binding an NFLOG group,
 * joining the conntrack groups and dumping the table all need CAP_NET_ADMIN
 * (the kernel answers EPERM without it). The kernel also answers EPERM when
 * another socket holds an NFLOG group, so the capability decides which of
 * the two an EPERM means.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

const CAP_NET_ADMIN = 12n;

export const NEEDS_NET_ADMIN =
  'needs CAP_NET_ADMIN: run as root or grant NET_ADMIN (the DaemonSet adds it), in the network namespace whose traffic you want';

/** CAP_NET_ADMIN in this process's effective set, from /proc/self/status; undefined when unknown. */
export function hasNetAdmin(status?: string): boolean | undefined {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/im.exec(text);
  if (!m) return undefined;
  return ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

const NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, n]) => [n as number, name]),
);

/** EPERM for 1, and so on; `E<n>` for a number the platform does not name. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `E${errno}`;
}
