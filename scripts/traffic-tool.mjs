#!/usr/bin/env node
// Traffic for the simulated node, run inside a pod's network namespace.
// Numeric addresses only: nothing here resolves a name (no DNS in a test netns).
// Every client prints one JSON line with what it did, so callers know the
// ports and byte counts to look for in conntrack.
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function tcpServer(ip, port) {
  // Protocol: the client sends "<replyBytes>\n" then its payload, then half-closes;
  // the server replies with exactly replyBytes bytes and closes.
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    let header = '';
    let want = -1;
    sock.on('data', (chunk) => {
      if (want >= 0) return;
      header += chunk.toString('latin1');
      const nl = header.indexOf('\n');
      if (nl >= 0) want = Number(header.slice(0, nl));
    });
    sock.on('end', () => {
      if (want > 0) sock.write(Buffer.alloc(want, 0x61));
      sock.end();
    });
    sock.on('error', () => {});
  });
  server.listen(Number(port), ip, () => out({ listening: true, ip, port: Number(port) }));
}

function tcpClient(dst, port, send, recv, holdMs) {
  const sock = net.connect({ host: dst, port: Number(port), allowHalfOpen: true });
  let received = 0;
  let sport = null;
  sock.on('connect', () => {
    sport = sock.localPort;
    out({ connected: true, sport });
    sock.write(`${Number(recv)}\n`);
    sock.write(Buffer.alloc(Number(send), 0x62));
    setTimeout(() => sock.end(), Number(holdMs ?? 0));
  });
  sock.on('data', (c) => {
    received += c.length;
  });
  sock.on('close', () => out({ done: true, sport, received }));
  sock.on('error', (err) => {
    out({ error: err.code ?? String(err) });
    process.exitCode = 1;
  });
}

function udpServer(ip, port, echo) {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    if (echo === 'echo') s.send(msg, rinfo.port, rinfo.address);
  });
  s.bind(Number(port), ip, () => out({ listening: true, ip, port: Number(port) }));
}

function udpClient(dst, port, count, size, gapMs) {
  const s = dgram.createSocket('udp4');
  let sent = 0;
  s.bind(0, () => {
    const sport = s.address().port;
    const next = () => {
      if (sent === Number(count)) {
        // Let echoes arrive before closing.
        setTimeout(() => {
          out({ done: true, sport, sent });
          s.close();
        }, 200);
        return;
      }
      s.send(Buffer.alloc(Number(size), 0x63), Number(port), dst, () => {
        sent++;
        setTimeout(next, Number(gapMs ?? 5));
      });
    };
    next();
  });
}

async function tcpMany(dst, port, count, concurrency) {
  let started = 0;
  let completed = 0;
  let failed = 0;
  const one = () =>
    new Promise((resolve) => {
      const sock = net.connect({ host: dst, port: Number(port), allowHalfOpen: true });
      sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
      sock.on('connect', () => {
        sock.write('0\n');
        sock.end();
      });
      sock.on('data', () => {});
      sock.on('close', (hadError) => {
        if (hadError) failed++;
        else completed++;
        resolve();
      });
      sock.on('error', () => {});
    });
  const worker = async () => {
    while (started < Number(count)) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Number(concurrency ?? 1) }, worker));
  out({ done: true, completed, failed });
}

function tcpAttempt(dst, port, timeoutMs) {
  const sock = net.connect({ host: dst, port: Number(port) });
  const timer = setTimeout(() => {
    out({ connected: false, sport: sock.localPort ?? null });
    sock.destroy();
  }, Number(timeoutMs));
  sock.on('connect', () => {
    clearTimeout(timer);
    out({ connected: true, sport: sock.localPort });
    sock.end('0\n');
  });
  sock.on('error', (err) => {
    clearTimeout(timer);
    out({ connected: false, error: err.code });
  });
}

// Periodic client for the demo: one short connection every intervalMs until killed.
function tcpPeriodic(dst, port, intervalMs, send, recv) {
  const tick = () => {
    const sock = net.connect({ host: dst, port: Number(port), allowHalfOpen: true });
    sock.setTimeout(Number(intervalMs), () => sock.destroy());
    sock.on('connect', () => {
      sock.write(`${Number(recv)}\n`);
      sock.end(Buffer.alloc(Number(send), 0x64));
    });
    sock.on('data', () => {});
    sock.on('error', () => {});
  };
  tick();
  setInterval(tick, Number(intervalMs));
}

switch (mode) {
  case 'tcp-server':
    tcpServer(args[0], args[1]);
    break;
  case 'tcp-client':
    tcpClient(args[0], args[1], args[2], args[3], args[4]);
    break;
  case 'udp-server':
    udpServer(args[0], args[1], args[2]);
    break;
  case 'udp-client':
    udpClient(args[0], args[1], args[2], args[3], args[4]);
    break;
  case 'tcp-many':
    await tcpMany(args[0], args[1], args[2], args[3]);
    break;
  case 'tcp-attempt':
    tcpAttempt(args[0], args[1], args[2]);
    break;
  case 'tcp-periodic':
    tcpPeriodic(args[0], args[1], args[2], args[3] ?? 100, args[4] ?? 100);
    break;
  default:
    process.stderr.write(`traffic-tool: unknown mode ${mode}\n`);
    process.exit(2);
}
