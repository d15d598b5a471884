// SPDX-License-Identifier: GPL-2.0
/*
 * The simulated node's eBPF data plane (tests and `flowtrail demo
 * --dataplane ebpf`, src/sim/tc-policy.ts), enforcing a pod's ingress policy
 * the way the VPC CNI network policy agent does: a TC classifier on the pod's
 * host-side veth, egress direction (towards the pod), that drops with
 * TC_ACT_SHOT. It is not part of the agent.
 *
 * While `config[0]` is 1 the pod is isolated: a packet that opens a flow
 * (UDP, TCP SYN without ACK, ICMP echo request) passes only when `allow`
 * holds its (source, destination, protocol, destination port), or the same
 * with source 0 (any). Replies and established TCP pass (stateful enough for
 * a demo). Its own counters are `drops` (0: packets, 1: IP bytes as the IPv4
 * total length): the ground truth tests compare flowtrail's deny records with.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* <linux/icmp.h> pulls in libc headers: the two fields used. */
#define ICMP_ECHO 8
struct icmp_min {
  __u8 type;
  __u8 code;
};

struct allow_key {
  __be32 saddr;
  __be32 daddr;
  __be16 dport; /* 0 for ICMP */
  __u8 proto;
  __u8 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct allow_key);
  __type(value, __u8);
} allow SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); /* 0: isolated */
  __type(key, __u32);
  __type(value, __u32);
} config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2); /* 0: packets, 1: bytes */
  __type(key, __u32);
  __type(value, __u64);
} drops SEC(".maps");

static __always_inline void count(__u32 k, __u64 n) {
  __u64 *v = bpf_map_lookup_elem(&drops, &k);
  if (v) __sync_fetch_and_add(v, n);
}

SEC("tc")
int pod_ingress(struct __sk_buff *skb) {
  __u32 zero = 0;
  __u32 *isolated = bpf_map_lookup_elem(&config, &zero);
  if (!isolated || *isolated == 0) return TC_ACT_OK;
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  /* At TC egress on a veth the data starts at the Ethernet header. */
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end || ip->ihl < 5) return TC_ACT_OK;
  if (ip->frag_off & bpf_htons(0x1fff)) return TC_ACT_OK;
  void *l4 = (void *)ip + ip->ihl * 4;
  struct allow_key key = {.saddr = ip->saddr, .daddr = ip->daddr, .proto = ip->protocol};
  if (ip->protocol == IPPROTO_TCP) {
    struct tcphdr *tcp = l4;
    if ((void *)(tcp + 1) > end) return TC_ACT_OK;
    if (!tcp->syn || tcp->ack) return TC_ACT_OK;
    key.dport = tcp->dest;
  } else if (ip->protocol == IPPROTO_UDP) {
    __be16 *ports = l4;
    if ((void *)(ports + 2) > end) return TC_ACT_OK;
    key.dport = ports[1];
  } else if (ip->protocol == IPPROTO_ICMP) {
    struct icmp_min *icmp = l4;
    if ((void *)(icmp + 1) > end) return TC_ACT_OK;
    if (icmp->type != ICMP_ECHO) return TC_ACT_OK;
  } else {
    return TC_ACT_OK;
  }
  if (bpf_map_lookup_elem(&allow, &key)) return TC_ACT_OK;
  key.saddr = 0;
  if (bpf_map_lookup_elem(&allow, &key)) return TC_ACT_OK;
  count(0, 1);
  count(1, bpf_ntohs(ip->tot_len));
  return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
