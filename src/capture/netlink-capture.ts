/**
 * The agent's netlink capture: the conntrack and NFLOG listeners behind the
 * agent core's CapturePort (src/agent/core.ts), configured from the config,
 * logging overruns and skipped messages.
 */
import type { CapturePort } from '../agent/core.js';
import type { Config } from '../config.js';
import type { Logger } from '../util/log.js';
import { ConntrackListener } from './conntrack-listener.js';
import { NflogListener } from './nflog-listener.js';

/** Netlink capture as the agent core sees it; an overrun asks the core for a resync dump. */
export function netlinkCapture(
  config: Config,
  logger: Logger,
  now: () => number,
  /** When the event socket listens: connections begun since should send their NEW. */
  onListening: (atMs: number) => void,
): CapturePort & {
  /** Both listeners' counters in one reading. */
  readStats(): {
    conntrack: ReturnType<ConntrackListener['readStats']>;
    nflog: ReturnType<NflogListener['readStats']>;
  };
} {
  let handlers: Parameters<CapturePort['start']>[0] | undefined;
  const conntrack = new ConntrackListener({
    subscribeUpdates: config.conntrack.subscribeUpdates,
    rcvbufBytes: config.conntrack.receiveBufferBytes,
    tickMs: config.conntrack.tickMs,
    now,
    // Views, not copies: the flow table reads each event during the call.
    onEvent: (ev) => handlers?.conntrackEvent(ev),
    onOverrun: (info) => {
      logger.warn(
        { count: info.count, setting: 'conntrack.receiveBufferBytes' },
        'conntrack socket overran: events lost, resyncing with a dump',
      );
      handlers?.overrun();
    },
    onDecodeError: (err) =>
      logger.debug({ code: err.code, ...err.context }, 'conntrack message skipped'),
    onError: (err) => logger.error({ err: err.message }, 'conntrack listener error'),
  });
  const groups = [config.nflog.ingressGroup, config.nflog.egressGroup];
  const nflog = new NflogListener({
    groups,
    rcvbufBytes: config.nflog.receiveBufferBytes,
    tickMs: config.nflog.tickMs,
    logger,
    onPackets: (packets) => handlers?.nflog(packets),
    onOverrun: (count) =>
      logger.warn(
        { count, setting: 'nflog.receiveBufferBytes' },
        'NFLOG socket overran: denied packets lost',
      ),
    onDecodeError: (err) =>
      logger.debug({ code: err.code, ...err.context }, 'NFLOG message skipped'),
    onError: (err) => logger.error({ err: err.message }, 'NFLOG listener error'),
  });
  return {
    readStats: () => ({ conntrack: conntrack.readStats(), nflog: nflog.readStats() }),
    async start(h) {
      handlers = h;
      conntrack.start();
      onListening(now());
      await nflog.start();
    },
    dumpInto: (onEvent) => conntrack.dumpInto(onEvent),
    async close() {
      await conntrack.close();
      await nflog.close();
    },
  };
}
