#!/usr/bin/env bash
# npm run check:leaks — runs scripts/leak-check.mjs (50 open/listen/send/close
# cycles of the netlink addon, 10 load/attach/drain/detach cycles of the
# kernel drop addon) under valgrind and fails if any memory lost
# for good was allocated in the addon's own frames. Node itself reports a few
# bytes of one-time OpenSSL init as lost; those are not ours.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
valgrind --leak-check=full --show-leak-kinds=definite,indirect --num-callers=30 \
  node_modules/.bin/node --expose-gc scripts/leak-check.mjs 2> "$log"
grep -E "definitely lost:|indirectly lost:" "$log" | sed 's/^==[0-9]*== *//'
if grep -B2 -A30 "are definitely lost\|are indirectly lost" "$log" | grep -q "flowtrail_netlink\|flowtrail_kdrops\|libbpf"; then
  echo "check:leaks: memory lost in an addon (full report: $log)" >&2
  exit 1
fi
echo "check:leaks: no memory lost in the addons"
