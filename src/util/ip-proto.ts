/**
 * IP protocols whose headers start with 16-bit source and destination ports
 * (TCP, UDP, SCTP, UDP-Lite, DCCP): the kernel's conntrack tracks their
 * ports, NFLOG packets carry them, records print them. One list, so the
 * decoders, the flow table and the re-aggregator agree on it.
 */
const PORT_PROTOS: ReadonlySet<number> = new Set([6, 17, 132, 136, 33]);

export function hasPorts(proto: number): boolean {
  return PORT_PROTOS.has(proto);
}
