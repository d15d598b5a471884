#!/bin/sh
# Builds the BPF objects (called by node-gyp, native/binding.gyp; needs clang
# and bpftool): the agent's kfree_skb program as a libbpf skeleton header in
# OUTDIR, and the simulated node's TC classifier (tests, demo) in PRODUCTDIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
product=$2
mkdir -p "$out" "$product"
clang -O2 -g -target bpf -Wall -Werror -I"$here" \
  -c "$here/kfree_skb.bpf.c" -o "$out/kfree_skb.bpf.o"
bpftool gen skeleton "$out/kfree_skb.bpf.o" name kdrops_bpf > "$out/kdrops.skel.h"
# <linux/*.h> include <asm/*.h>, which Debian keeps under the multiarch directory.
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
clang -O2 -g -target bpf -Wall -Werror -I"/usr/include/$multiarch" \
  -c "$here/sim-tc-policy.bpf.c" -o "$product/sim-tc-policy.bpf.o"
