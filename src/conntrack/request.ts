/** ctnetlink requests. */
import { NLM_F_DUMP, NLM_F_REQUEST, writeNfHeader } from '../netlink/frame.js';
import { CT_MSG_GET } from './constants.js';

export { CT_GROUP_DESTROY, CT_GROUP_NEW, CT_GROUP_UPDATE } from './constants.js';

/** IPCTNL_MSG_CT_GET with NLM_F_DUMP: every conntrack entry (AF_UNSPEC = IPv4 and IPv6). */
export function buildDumpRequest(seq: number, family = 0): Buffer {
  const buf = Buffer.alloc(20);
  writeNfHeader(buf, 20, CT_MSG_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, family, 0);
  return buf;
}
