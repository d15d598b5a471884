/**
 * `flowtrail capture`: decoded conntrack and NFLOG events (and, with
 * --kernel-drops, the kernel's drop events with their reason), as they arrive,
 * for debugging (like `conntrack -E` and `hubble observe`). JSON lines with
 * --json exactly as docs/architecture.md "Contracts" says.
 */
import type { Command } from 'commander';
import { ConntrackListener } from '../capture/conntrack-listener.js';
import { KernelDropListener } from '../capture/kdrops-listener.js';
import { NflogListener } from '../capture/nflog-listener.js';
import { TCP_STATES } from '../conntrack/constants.js';
import type { ConntrackEvent } from '../conntrack/types.js';
import type { KernelDrop } from '../kdrops/types.js';
import type { NflogPacket } from '../nflog/types.js';
import { FlowtrailError } from '../util/errors.js';
import { EXIT_USAGE, exitCodes } from './options.js';
import { onClosedPipe } from './output.js';

interface CaptureFlags {
  json?: boolean;
  conntrack: boolean;
  events: string;
  nflogGroups: string;
  nflog: boolean;
  dump?: boolean;
  src?: string;
  dst?: string;
  port?: string;
  proto?: string;
  count?: string;
  duration?: string;
  rcvbuf?: string;
  tick?: string;
  kernelDrops?: boolean;
}

const PROTO_NAMES: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 };
const PROTO_LABEL: Record<number, string> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  58: 'icmpv6',
  132: 'sctp',
};

export interface CaptureFilter {
  src?: string;
  dst?: string;
  port?: number;
  proto?: number;
}

function matches(
  f: CaptureFilter,
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
): boolean {
  if (f.proto !== undefined && f.proto !== proto) return false;
  if (f.src !== undefined && f.src !== src) return false;
  if (f.dst !== undefined && f.dst !== dst) return false;
  if (f.port !== undefined && f.port !== sport && f.port !== dport) return false;
  return true;
}

export function conntrackJson(ev: ConntrackEvent): string {
  const o = ev.orig;
  const obj: Record<string, unknown> = {
    source: 'conntrack',
    type: ev.type,
    proto: o.proto,
    src: o.src,
    dst: o.dst,
    sport: o.sport,
    dport: o.dport,
    zone: ev.zone,
  };
  if (ev.countersOrig) {
    obj.packetsOrig = ev.countersOrig.packets;
    obj.bytesOrig = ev.countersOrig.bytes;
  }
  if (ev.countersReply) {
    obj.packetsReply = ev.countersReply.packets;
    obj.bytesReply = ev.countersReply.bytes;
  }
  return JSON.stringify(obj);
}

export function nflogJson(p: NflogPacket): string {
  return JSON.stringify({
    source: 'nflog',
    group: p.group,
    prefix: p.prefix,
    action: p.verdict?.action ?? null,
    proto: p.proto,
    src: p.src,
    dst: p.dst,
    sport: p.sport,
    dport: p.dport,
    bytes: p.bytes,
  });
}

export function kdropJson(d: KernelDrop): string {
  return JSON.stringify({
    source: 'kdrop',
    reason: d.reasonName,
    ifindex: d.ifindex,
    proto: d.proto,
    src: d.src,
    dst: d.dst,
    sport: d.sport,
    dport: d.dport,
    bytes: d.bytes,
  });
}

function endpoint(ip: string, port: number, proto: number): string {
  if (proto === 1 || proto === 58) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function conntrackText(ev: ConntrackEvent): string {
  const o = ev.orig;
  const kind = `[${ev.type.toUpperCase()}]`.padEnd(10);
  const proto = (PROTO_LABEL[o.proto] ?? String(o.proto)).padEnd(5);
  const state = ev.tcpState !== undefined ? ` ${TCP_STATES[ev.tcpState] ?? ev.tcpState}` : '';
  const counters =
    ev.countersOrig && ev.countersReply
      ? `  ${ev.countersOrig.packets}/${ev.countersOrig.bytes}B → ${ev.countersReply.packets}/${ev.countersReply.bytes}B ←`
      : '';
  const r = ev.reply;
  const nat =
    r && (r.src !== o.dst || r.dst !== o.src)
      ? `  reply ${endpoint(r.src, r.sport, r.proto)} → ${endpoint(r.dst, r.dport, r.proto)}`
      : '';
  const icmp =
    o.icmpType !== undefined ? ` type=${o.icmpType} code=${o.icmpCode} id=${o.icmpId}` : '';
  return `conntrack ${kind}${proto}${endpoint(o.src, o.sport, o.proto)} → ${endpoint(o.dst, o.dport, o.proto)}${icmp}${state}${counters}${nat}${ev.zone ? ` zone=${ev.zone}` : ''}`;
}

export function nflogText(p: NflogPacket): string {
  const proto = (PROTO_LABEL[p.proto] ?? String(p.proto)).padEnd(5);
  const action = (p.verdict?.action ?? '?').toUpperCase().padEnd(6);
  return `nflog     [group ${p.group}] ${action}${proto}${endpoint(p.src, p.sport, p.proto)} → ${endpoint(p.dst, p.dport, p.proto)} ${p.bytes}B  ${p.prefix}`;
}

export function kdropText(d: KernelDrop): string {
  const proto = (PROTO_LABEL[d.proto] ?? String(d.proto)).padEnd(5);
  const where =
    d.ipVersion === 4
      ? `${endpoint(d.src, d.sport, d.proto)} → ${endpoint(d.dst, d.dport, d.proto)} ${d.bytes}B`
      : `IPv${d.ipVersion || '?'} ${d.skbLen}B`;
  return `kdrop     [${d.reasonName}] ${proto}${where}${d.ifindex ? ` if=${d.ifindex}` : ''}`;
}

function parseIntFlag(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(
      `flowtrail capture: --${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}\n`,
    );
    process.exit(EXIT_USAGE);
  }
  return n;
}

export function registerCapture(program: Command): void {
  const cmd = program
    .command('capture')
    .description('print decoded conntrack and NFLOG events (debugging, like conntrack -E)')
    .option('--json', 'one JSON object a line (see docs/format.md)')
    .option('--no-conntrack', 'do not listen to conntrack events')
    .option('--events <list>', 'conntrack events: new,destroy,update', 'new,destroy')
    .option('--nflog-groups <list>', 'NFLOG groups to bind (comma separated)', '1,2')
    .option('--no-nflog', 'do not bind NFLOG groups')
    .option('--dump', 'print one conntrack dump and exit')
    .option('--src <ip>', 'only events with this source address')
    .option('--dst <ip>', 'only events with this destination address')
    .option('--port <n>', 'only events with this source or destination port')
    .option('--proto <p>', 'only this protocol: tcp, udp, icmp, icmpv6, sctp or a number')
    .option('--count <n>', 'exit after printing n events')
    .option('--duration <seconds>', 'exit after this many seconds')
    .option('--rcvbuf <bytes>', 'socket receive buffer (SO_RCVBUFFORCE)', String(32 * 1024 * 1024))
    .option('--tick <ms>', 'coalescing tick before draining a readable socket', '10')
    .option(
      '--kernel-drops',
      "also the kernel's drop events of this network namespace, with their reason (CAP_BPF and CAP_PERFMON)",
    )
    .addHelpText(
      'after',
      '\nRun it in the network namespace whose conntrack you want (as root or with CAP_NET_ADMIN).',
    );
  exitCodes(cmd, {
    0: 'stopped: Ctrl-C, SIGTERM, --count, --duration, --dump done, or the reader of stdout went away',
    1: 'the netlink sockets could not be opened (not root or CAP_NET_ADMIN, group taken)',
    2: 'bad usage',
  });
  cmd.action(async (flags: CaptureFlags) => {
    const filter: CaptureFilter = {};
    if (flags.src) filter.src = flags.src;
    if (flags.dst) filter.dst = flags.dst;
    const port = parseIntFlag('port', flags.port, 0, 65535);
    if (port !== undefined) filter.port = port;
    if (flags.proto !== undefined) {
      const p =
        PROTO_NAMES[flags.proto.toLowerCase()] ?? parseIntFlag('proto', flags.proto, 0, 255);
      if (p !== undefined) filter.proto = p;
    }
    const limit = parseIntFlag('count', flags.count, 1, Number.MAX_SAFE_INTEGER);
    const duration = parseIntFlag('duration', flags.duration, 1, 86_400 * 365);
    const rcvbufBytes = parseIntFlag('rcvbuf', flags.rcvbuf, 4096, 1 << 30);
    const tickMs = parseIntFlag('tick', flags.tick, 0, 1000);
    const events = new Set(
      flags.events
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
    for (const e of events) {
      if (!['new', 'destroy', 'update'].includes(e)) {
        process.stderr.write(
          `flowtrail capture: --events: expected new, destroy or update, got ${JSON.stringify(e)}\n`,
        );
        process.exit(EXIT_USAGE);
      }
    }
    const groups = flags.nflog
      ? flags.nflogGroups
          .split(',')
          .filter(Boolean)
          .map((g) => parseIntFlag('nflog-groups', g.trim(), 1, 65535)!)
      : [];

    const out = process.stdout;
    let printed = 0;
    let pending: string[] = [];
    let stopping = false;
    const summary = {
      conntrack: 0,
      nflog: 0,
      kdrops: 0,
      overruns: 0,
      resyncs: 0,
      decodeErrors: 0,
    };
    const flush = () => {
      if (pending.length === 0) return;
      out.write(`${pending.join('\n')}\n`);
      pending = [];
    };
    onClosedPipe(() => void stop(0));
    const emit = (line: string) => {
      if (stopping) return;
      pending.push(line);
      printed++;
      if (limit !== undefined && printed >= limit) void stop(0);
    };
    const ct = (ev: ConntrackEvent) => {
      if (!events.has(ev.type) && !ev.fromDump) return;
      const o = ev.orig;
      if (!matches(filter, o.proto, o.src, o.dst, o.sport, o.dport)) return;
      summary.conntrack++;
      emit(flags.json ? conntrackJson(ev) : conntrackText(ev));
    };
    const nf = (p: NflogPacket) => {
      if (!matches(filter, p.proto, p.src, p.dst, p.sport, p.dport)) return;
      summary.nflog++;
      emit(flags.json ? nflogJson(p) : nflogText(p));
    };

    const kd = (d: KernelDrop) => {
      if (!matches(filter, d.proto, d.src, d.dst, d.sport, d.dport)) return;
      summary.kdrops++;
      emit(flags.json ? kdropJson(d) : kdropText(d));
    };

    let conntrack: ConntrackListener | undefined;
    let nflog: NflogListener | undefined;
    let kdrops: KernelDropListener | undefined;
    async function stop(code: number): Promise<void> {
      if (stopping) return;
      flush();
      stopping = true;
      await conntrack?.close();
      await nflog?.close();
      kdrops?.close();
      process.stderr.write(
        `flowtrail capture: ${summary.conntrack} conntrack events, ${summary.nflog} NFLOG packets, ${flags.kernelDrops ? `${summary.kdrops} kernel drops, ` : ''}${summary.overruns} overruns, ${summary.resyncs} resyncs, ${summary.decodeErrors} decode errors\n`,
      );
      out.write('', () => process.exit(code));
    }

    try {
      conntrack = new ConntrackListener({
        subscribeUpdates: events.has('update'),
        rcvbufBytes,
        tickMs,
        onEvents: (evs) => {
          for (const ev of evs) ct(ev);
          flush();
        },
        onOverrun: (info) => {
          summary.overruns += info.count;
          process.stderr.write(
            `flowtrail capture: conntrack socket overran (${info.count}): events were lost; resyncing with a dump (raise --rcvbuf)\n`,
          );
        },
        onResync: (evs) => {
          summary.resyncs++;
          for (const ev of evs) ct(ev);
          flush();
        },
        onDecodeError: () => {
          summary.decodeErrors++;
        },
        onError: (err) => process.stderr.write(`flowtrail capture: ${err.message}\n`),
      });
      if (flags.dump) {
        for (const ev of await conntrack.dump()) ct(ev);
        flush();
        await stop(0);
        return;
      }
      if (flags.conntrack) conntrack.start();
      if (groups.length > 0) {
        nflog = new NflogListener({
          groups,
          rcvbufBytes,
          tickMs,
          onPackets: (ps) => {
            for (const p of ps) nf(p);
            flush();
          },
          onOverrun: (n) => {
            summary.overruns += n;
            process.stderr.write(
              `flowtrail capture: NFLOG socket overran (${n}): packets were lost\n`,
            );
          },
          onDecodeError: () => {
            summary.decodeErrors++;
          },
        });
        await nflog.start();
      }
      if (flags.kernelDrops) {
        kdrops = new KernelDropListener({
          tickMs,
          onDrops: (ds) => {
            for (const d of ds) kd(d);
            flush();
          },
          onDecodeError: () => {
            summary.decodeErrors++;
          },
        });
        kdrops.start();
      }
    } catch (err) {
      const message = err instanceof FlowtrailError ? err.message : String(err);
      process.stderr.write(`flowtrail capture: ${message}\n`);
      await conntrack?.close();
      await nflog?.close();
      process.exit(1);
    }
    process.stderr.write(
      `flowtrail capture: listening (conntrack ${flags.conntrack ? [...events].join(',') : 'off'}; NFLOG groups ${groups.join(',') || 'none'}${flags.kernelDrops ? '; kernel drops' : ''}); Ctrl-C to stop\n`,
    );
    process.once('SIGINT', () => void stop(0));
    process.once('SIGTERM', () => void stop(0));
    if (duration !== undefined) setTimeout(() => void stop(0), duration * 1000).unref();
  });
}
