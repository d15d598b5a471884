/**
 * Kernel preconditions: ctnetlink and nfnetlink_log usable in this network
 * namespace, and the conntrack sysctls that decide whether flow records can
 * be exact (counters, timestamps, events, table room).
 */
import { readFileSync } from 'node:fs';
import { ConntrackListener, dumpConntrack } from '../capture/conntrack-listener.js';
import { NflogGroupError, NflogListener } from '../capture/nflog-listener.js';
import { describeHolder, findNflogHolder } from './holders.js';
import { type CheckResult, errnoOf, fail, ok, warn } from './types.js';

/** A command line of the flowtrail agent (the CLI's `agent` subcommand). */
const RUNNING_AGENT = /flowtrail(\.js)?\s+agent\b/;

const SYSCTL = '/proc/sys/net/netfilter';

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`${SYSCTL}/${name}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const PRIVILEGE =
  'run as root or with CAP_NET_ADMIN (the DaemonSet adds it: deploy/kubernetes), in the node network namespace (hostNetwork: true)';

export async function checkConntrack(): Promise<CheckResult> {
  const title = 'conntrack events and dumps (ctnetlink)';
  const listener = new ConntrackListener({ onEvents: () => {}, ref: false });
  try {
    listener.start();
    const entries = await dumpConntrack();
    return ok(
      'kernel.ctnetlink',
      title,
      `subscribed to NEW/DESTROY; a dump listed ${entries.length} connections`,
    );
  } catch (err) {
    const errno = errnoOf(err);
    return fail(
      'kernel.ctnetlink',
      title,
      `${(err as Error).message} (${errno})`,
      errno === 'EPERM' || errno === 'EACCES'
        ? PRIVILEGE
        : 'load nf_conntrack_netlink (`modprobe nf_conntrack_netlink`) on the node',
    );
  } finally {
    await listener.close();
  }
}

export async function checkNflog(groups: readonly number[]): Promise<CheckResult> {
  const title = `NFLOG groups ${groups.join(', ')} (nfnetlink_log)`;
  const listener = new NflogListener({ groups: [...groups], onPackets: () => {}, ref: false });
  try {
    await listener.start();
    return ok('kernel.nflog', title, `bound and released groups ${groups.join(', ')}`);
  } catch (err) {
    if (err instanceof NflogGroupError && (err.errno === 'EBUSY' || err.errno === 'EPERM')) {
      const holder = findNflogHolder(err.group);
      const who = holder ? `: ${describeHolder(holder)}` : '';
      if (holder?.command !== undefined && RUNNING_AGENT.test(holder.command)) {
        // Beside a running agent the bind cannot be tested, and that is expected.
        return warn(
          'kernel.nflog',
          title,
          `group ${err.group} is held by a running flowtrail agent${who}; the bind could not be tested`,
          'nothing, if that agent is the one you meant to run; to test the bind, run doctor where no agent runs',
        );
      }
      return fail(
        'kernel.nflog',
        title,
        `group ${err.group} is already bound by another process in this network namespace${who} (${err.errno})`,
        `stop the other NFLOG listener (another flowtrail, ulogd, a capture) or set nflog.ingressGroup / nflog.egressGroup to the groups your policy rules log to`,
      );
    }
    const errno = errnoOf(err);
    return fail(
      'kernel.nflog',
      title,
      `${(err as Error).message} (${errno})`,
      errno === 'EPERM' ? PRIVILEGE : 'load nfnetlink_log (`modprobe nfnetlink_log`) on the node',
    );
  } finally {
    await listener.close();
  }
}

export function checkSysctls(): CheckResult[] {
  const out: CheckResult[] = [];
  const acct = readSysctl('nf_conntrack_acct');
  out.push(
    acct === '1'
      ? ok('kernel.acct', 'conntrack byte/packet counters', 'net.netfilter.nf_conntrack_acct = 1')
      : fail(
          'kernel.acct',
          'conntrack byte/packet counters',
          `net.netfilter.nf_conntrack_acct = ${acct ?? 'unreadable'}: every record's packets and bytes would read 0`,
          'sysctl -w net.netfilter.nf_conntrack_acct=1 (the DaemonSet init container sets it; persist it in /etc/sysctl.d)',
        ),
  );
  const ts = readSysctl('nf_conntrack_timestamp');
  out.push(
    ts === '1'
      ? ok(
          'kernel.timestamp',
          'conntrack start/stop timestamps',
          'net.netfilter.nf_conntrack_timestamp = 1',
        )
      : warn(
          'kernel.timestamp',
          'conntrack start/stop timestamps',
          `net.netfilter.nf_conntrack_timestamp = ${ts ?? 'unreadable'}: connection times fall back to when events are read`,
          'sysctl -w net.netfilter.nf_conntrack_timestamp=1',
        ),
  );
  const events = readSysctl('nf_conntrack_events');
  out.push(
    events !== undefined && events !== '0'
      ? ok(
          'kernel.events',
          'conntrack event delivery',
          `net.netfilter.nf_conntrack_events = ${events}`,
        )
      : fail(
          'kernel.events',
          'conntrack event delivery',
          `net.netfilter.nf_conntrack_events = ${events ?? 'unreadable'}: the kernel sends no NEW/DESTROY events`,
          'sysctl -w net.netfilter.nf_conntrack_events=1',
        ),
  );
  const count = Number(readSysctl('nf_conntrack_count'));
  const max = Number(readSysctl('nf_conntrack_max'));
  if (Number.isFinite(count) && max > 0) {
    const pct = (100 * count) / max;
    const found = `${count} of nf_conntrack_max ${max} entries (${pct.toFixed(1)}%)`;
    out.push(
      pct < 90
        ? ok('kernel.table', 'conntrack table room', found)
        : warn(
            'kernel.table',
            'conntrack table room',
            `${found}: a full table drops new connections`,
            'raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets)',
          ),
    );
  }
  return out;
}
