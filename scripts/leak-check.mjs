#!/usr/bin/env node
// Exercised under valgrind by `npm run check:leaks`: opens, listens, sends,
// receives and closes netlink sockets many times, so that any memory the
// addon forgets to free shows up as "definitely lost" in its frames.
import { NetlinkSocket } from '../dist/capture/netlink-socket.js';
import { buildDumpRequest } from '../dist/conntrack/request.js';

let batches = 0;
for (let i = 0; i < 50; i++) {
  const s = NetlinkSocket.open({
    groups: [1, 3],
    rcvbufBytes: 1 << 20,
    tickMs: 0,
    onBatch: () => batches++,
  });
  s.listen(true);
  s.send(buildDumpRequest(i + 1));
  await new Promise((r) => setTimeout(r, 5));
  s.close();
}
// The kernel drop addon, where it was built: load, attach, drain, detach.
let kdropCycles = 0;
try {
  const { KernelDropListener } = await import('../dist/capture/kdrops-listener.js');
  for (let i = 0; i < 10; i++) {
    const l = new KernelDropListener({ onDrops: () => {}, tickMs: 0 });
    l.start();
    await new Promise((r) => setTimeout(r, 5));
    l.drain();
    l.close();
    kdropCycles++;
  }
} catch (err) {
  console.error(`kernel drop addon not exercised: ${err.message}`);
}
// Let libuv run the close callbacks, then let GC finalize the handles.
await new Promise((r) => setTimeout(r, 50));
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ cycles: 50, batches, kdropCycles }));
