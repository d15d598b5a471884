/**
 * Who holds an NFLOG group: /proc/net/netfilter/nfnetlink_log lists each bound
 * group with the netlink port id of its socket, /proc/net/netlink maps port
 * ids to socket inodes, and /proc/<pid>/fd links name the inode's owner. All
 * three are per network namespace (the first two) or global (the last); the
 * parsers are pure, the lookup reads /proc and gives up quietly.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface NflogInstance {
  readonly group: number;
  readonly portid: number;
}

/** Lines of `%5d %6u %5u %1u %5u %5u %2d`: group, peer portid, qlen, copy mode, range, timeout, use. */
export function parseNflogInstances(text: string): NflogInstance[] {
  const out: NflogInstance[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s/.exec(line);
    if (m) out.push({ group: Number(m[1]), portid: Number(m[2]) });
  }
  return out;
}

export interface NetlinkSocketEntry {
  readonly protocol: number;
  readonly portid: number;
  readonly inode: number;
}

/** /proc/net/netlink: `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`. */
export function parseNetlinkSockets(text: string): NetlinkSocketEntry[] {
  const out: NetlinkSocketEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^[0-9a-f]+$/.test(f[0]!)) continue;
    out.push({ protocol: Number(f[1]), portid: Number(f[2]), inode: Number(f[9]) });
  }
  return out;
}

const NETLINK_NETFILTER = 12;

export interface Holder {
  readonly portid: number;
  readonly pid?: number;
  readonly command?: string;
}

function processOfInode(inode: number): { pid: number; command: string } | undefined {
  const target = `socket:[${inode}]`;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link !== target) continue;
      let command = '';
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .join(' ');
      } catch {}
      if (command === '') {
        try {
          command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {}
      }
      return { pid: Number(pid), command };
    }
  }
  return undefined;
}

/** The socket (and, when /proc lets us see it, the process) bound to an NFLOG group here. */
export function findNflogHolder(group: number): Holder | undefined {
  let instances: NflogInstance[];
  try {
    instances = parseNflogInstances(readFileSync('/proc/net/netfilter/nfnetlink_log', 'utf8'));
  } catch {
    return undefined;
  }
  const inst = instances.find((i) => i.group === group);
  if (!inst) return undefined;
  let sockets: NetlinkSocketEntry[] = [];
  try {
    sockets = parseNetlinkSockets(readFileSync('/proc/net/netlink', 'utf8'));
  } catch {}
  const sock = sockets.find((s) => s.protocol === NETLINK_NETFILTER && s.portid === inst.portid);
  const proc = sock ? processOfInode(sock.inode) : undefined;
  return proc
    ? { portid: inst.portid, pid: proc.pid, command: proc.command }
    : { portid: inst.portid };
}

export function describeHolder(h: Holder): string {
  if (h.pid === undefined) return `netlink port ${h.portid}`;
  const cmd = h.command && h.command.length > 240 ? `${h.command.slice(0, 237)}...` : h.command;
  return `pid ${h.pid} (${cmd || 'unknown command'}), netlink port ${h.portid}`;
}
