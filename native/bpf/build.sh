#!/bin/sh
# Builds the kfree_skb BPF object and its libbpf skeleton into OUTDIR
# (called by node-gyp, native/binding.gyp). Needs clang and bpftool.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
clang -O2 -g -target bpf -Wall -Werror -I"$here" \
  -c "$here/kfree_skb.bpf.c" -o "$out/kfree_skb.bpf.o"
bpftool gen skeleton "$out/kfree_skb.bpf.o" name kdrops_bpf > "$out/kdrops.skel.h"
