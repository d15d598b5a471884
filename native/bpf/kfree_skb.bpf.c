// SPDX-License-Identifier: GPL-2.0
/*
 * flowtrail's kernel drop source: one event per packet the kernel frees as
 * dropped (the skb:kfree_skb tracepoint, with its drop reason, kernel >= 5.17),
 * for packets of one network namespace, through a BPF ring buffer.
 *
 * The tracepoint is global (every namespace on the machine), so the program
 * keeps only packets whose device (or, without one, socket) is in the
 * namespace the agent runs in: target_netns, set by the loader before load.
 * 0 keeps every namespace (debugging).
 *
 * The event layout is a contract with src/kdrops/decode.ts (48 bytes, host
 * byte order except addresses, which stay in network order).
 */
#include "kdrops-types.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132

struct kdrop_event {
  __u32 reason;
  __u32 netns;
  __u32 ifindex;
  __u32 ip_len;   /* IPv4 tot_len: the packet's IP bytes, as NFLOG and iptables count them */
  __u8 ip_version;
  __u8 ip_proto;
  __u16 ip_id;
  __u8 saddr[4];
  __u8 daddr[4];
  __u16 sport;
  __u16 dport;
  __u16 l3proto;  /* skb->protocol (ETH_P_*) */
  __u16 frag;     /* 1 when a non-first fragment (no ports) */
  __u32 skb_len;
  __u64 location; /* the kernel address that freed the packet */
};

_Static_assert(sizeof(struct kdrop_event) == 48, "kdrop_event is a 48-byte contract");

const volatile __u32 target_netns = 0;

/* Events the ring buffer had no room for (read by the loader: loss is counted, never silent). */
__u64 lost = 0;

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 22); /* resized by the loader */
} events SEC(".maps");

struct iphdr_min {
  __u8 ihl_version;
  __u8 tos;
  __be16 tot_len;
  __be16 id;
  __be16 frag_off;
  __u8 ttl;
  __u8 protocol;
  __u16 check;
  __u8 saddr[4];
  __u8 daddr[4];
};

static __always_inline __u16 be16(__be16 v) { return __builtin_bswap16(v); }

static __always_inline __u32 netns_of(struct sk_buff *skb, __u32 *ifindex) {
  struct net_device *dev = BPF_CORE_READ(skb, dev);
  if (dev) {
    *ifindex = BPF_CORE_READ(dev, ifindex);
    return BPF_CORE_READ(dev, nd_net.net, ns.inum);
  }
  struct sock *sk = BPF_CORE_READ(skb, sk);
  if (sk) return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
  return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(flowtrail_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason) {
  __u32 r = (__u32)reason;
  if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
      r == (__u32)bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
    return 0;
  if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_NOT_DROPPED_YET) &&
      r == (__u32)bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET))
    return 0;

  __u32 ifindex = 0;
  __u32 netns = netns_of(skb, &ifindex);
  if (target_netns != 0 && netns != target_netns) return 0;

  struct kdrop_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
  if (!e) {
    __sync_fetch_and_add(&lost, 1);
    return 0;
  }
  __builtin_memset(e, 0, sizeof *e);
  e->reason = r;
  e->netns = netns;
  e->ifindex = ifindex;
  e->location = (__u64)location;
  e->skb_len = BPF_CORE_READ(skb, len);
  __u16 l3 = be16(BPF_CORE_READ(skb, protocol));
  e->l3proto = l3;

  if (l3 == ETH_P_IP) {
    unsigned char *head = BPF_CORE_READ(skb, head);
    __u16 nh = BPF_CORE_READ(skb, network_header);
    struct iphdr_min ip;
    if (head && bpf_probe_read_kernel(&ip, sizeof ip, head + nh) == 0 && (ip.ihl_version >> 4) == 4) {
      e->ip_version = 4;
      e->ip_proto = ip.protocol;
      e->ip_len = be16(ip.tot_len);
      e->ip_id = be16(ip.id);
      __builtin_memcpy(e->saddr, ip.saddr, 4);
      __builtin_memcpy(e->daddr, ip.daddr, 4);
      __u16 frag = be16(ip.frag_off) & 0x1fff;
      e->frag = frag != 0;
      if (frag == 0 && (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP || ip.protocol == IPPROTO_SCTP)) {
        __be16 ports[2];
        __u32 ihl = (ip.ihl_version & 0x0f) * 4;
        if (bpf_probe_read_kernel(ports, sizeof ports, head + nh + ihl) == 0) {
          e->sport = be16(ports[0]);
          e->dport = be16(ports[1]);
        }
      }
    }
  } else if (l3 == ETH_P_IPV6) {
    e->ip_version = 6;
  }
  bpf_ringbuf_submit(e, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
