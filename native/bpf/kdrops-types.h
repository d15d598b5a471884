/*
 * The few kernel types the kfree_skb program reads, written by hand instead
 * of a full vmlinux.h: every struct carries preserve_access_index, so libbpf
 * relocates each field access against the running kernel's BTF at load time
 * (CO-RE), and the build needs no BTF of its own. Only the fields used are
 * declared; names must match the kernel's.
 */
#ifndef FLOWTRAIL_KDROPS_TYPES_H
#define FLOWTRAIL_KDROPS_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum bpf_map_type {
  BPF_MAP_TYPE_RINGBUF = 27,
};

/* Values differ between kernels (5.17 started at NOT_SPECIFIED = 0): the
 * program asks for them through bpf_core_enum_value, never by number. */
enum skb_drop_reason {
  SKB_NOT_DROPPED_YET,
  SKB_CONSUMED,
  SKB_DROP_REASON_NOT_SPECIFIED,
};

struct ns_common {
  unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
  struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
  struct net *net;
} possible_net_t;

struct net_device {
  int ifindex;
  possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sock_common {
  possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
  struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct sk_buff {
  struct net_device *dev;
  struct sock *sk;
  unsigned int len;
  __be16 protocol;
  __u16 network_header;
  unsigned char *head;
} __attribute__((preserve_access_index));

#endif
