#!/usr/bin/env bash
# Installs the system tools flowtrail's tests and demo use, when missing:
# iptables/nftables/conntrack/iproute2 for the simulated node, nginx and ab
# for traffic, curl, valgrind for the addon's leak check, kubectl to render
# deploy/kubernetes, the aarch64 cross compiler to build the addon for arm64
# (the image is multi-arch), script(1) for the CLI's terminal tests, chromium
# for the report page's browser test (driven by puppeteer-core; no browser is
# ever downloaded), clang + bpftool + libbpf-dev for the kernel drop addon
# (native/bpf; npm ci builds it), setpriv and mount for the unprivileged and
# full-disk tests. Debian packages only.
set -euo pipefail

need=()
command -v iptables  >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v nft       >/dev/null || need+=(nftables)
command -v ip        >/dev/null || need+=(iproute2)
command -v nginx     >/dev/null || need+=(nginx-light)
command -v ab        >/dev/null || need+=(apache2-utils)
command -v curl      >/dev/null || need+=(curl)
command -v ping      >/dev/null || need+=(iputils-ping)
command -v valgrind  >/dev/null || need+=(valgrind)
command -v make      >/dev/null || need+=(make)
command -v g++       >/dev/null || need+=(g++)
command -v python3   >/dev/null || need+=(python3)
command -v kubectl   >/dev/null || need+=(kubernetes-client)  # `kubectl kustomize` of deploy/kubernetes
command -v setpriv   >/dev/null || need+=(util-linux)         # unprivileged runs (tests of EPERM messages)
command -v mount     >/dev/null || need+=(mount)              # tmpfs spools (full and read-only disk tests)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v script    >/dev/null || need+=(bsdutils)          # a pseudo-terminal for colour tests
[ -x /usr/bin/chromium ]       || need+=(chromium)           # test/integration/report-html-browser.test.ts
command -v clang     >/dev/null || need+=(clang)              # the kfree_skb BPF program (native/bpf)
command -v bpftool   >/dev/null || need+=(bpftool)            # its libbpf skeleton; the tests' tc/map reads
[ -f /usr/include/bpf/libbpf.h ] || need+=(libbpf-dev)       # the addon links libbpf
command -v capsh     >/dev/null || need+=(libcap2-bin)        # doctor tests drop capabilities

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "host-deps: missing ${need[*]}; run this script as root to install them" >&2
    exit 1
  fi
  echo "host-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# CloudWatch emulator for tests and the demo: moto ships in the machine image's python.
if ! command -v moto_server >/dev/null && ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "host-deps: moto_server is not installed (python3 -m pip install 'moto[server]')" >&2
  exit 1
fi
echo "host-deps: ok" >&2
