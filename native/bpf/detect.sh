#!/bin/sh
# Prints 1 when the kernel drop addon can be built here (clang, bpftool and
# libbpf's headers), else 0 with the reason on stderr. Under CI=true a missing
# tool is an error: CI installs them (scripts/host-deps.sh), nothing skips.
# FLOWTRAIL_KDROPS=0 leaves it out on purpose (a cross build whose target has
# no libbpf to link: the Dockerfile builds it natively in the target's stage).
if [ "${FLOWTRAIL_KDROPS:-}" = "0" ]; then echo 0; exit 0; fi
missing=""
command -v clang >/dev/null 2>&1 || missing="$missing clang"
command -v bpftool >/dev/null 2>&1 || missing="$missing bpftool"
[ -f /usr/include/bpf/libbpf.h ] || missing="$missing libbpf-dev"
if [ -z "$missing" ]; then echo 1; exit 0; fi
echo "flowtrail: the kernel drop addon (denies.source kernel/both) is not built: missing$missing (apt-get install clang bpftool libbpf-dev, then npm run build:native)" >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
echo 0
