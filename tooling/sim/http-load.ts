/**
 * Short HTTP connections as fast as this machine makes them: nginx in a
 * server pod, ApacheBench (`ab`, no keep-alive) in a client pod. The load of
 * bench:capture, bench:agent and the tuple-reuse test. Both programs come
 * from Debian (scripts/host-deps.sh); nothing resolves a name.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/sim/netns.js';
import type { SimNode, SimPod } from '../../src/sim/simnode.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** nginx answering `ok` on ip:port in the pod (its files in `dir`), tracked by the node. */
export async function startNginx(
  node: SimNode,
  pod: SimPod,
  dir: string,
  port = 80,
): Promise<void> {
  const conf = join(dir, `nginx-${pod.name}.conf`);
  writeFileSync(
    conf,
    [
      `daemon off; worker_processes 1; pid ${dir}/nginx-${pod.name}.pid; error_log ${dir}/nginx-${pod.name}.err;`,
      'events { worker_connections 4096; }',
      `http { access_log off; server { listen ${pod.ip}:${port} backlog=4096; location / { return 200 'ok'; } } }`,
      '',
    ].join('\n'),
  );
  node.track(
    spawn('ip', ['netns', 'exec', pod.netns, 'nginx', '-c', conf, '-p', dir], {
      stdio: 'ignore',
      detached: true,
    }),
  );
  // nginx has no readiness signal of its own: wait for its port to answer.
  for (let i = 0; i < 50; i++) {
    try {
      run(['ip', 'netns', 'exec', pod.netns, 'bash', '-c', `exec 3<>/dev/tcp/${pod.ip}/${port}`]);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`nginx in ${pod.namespace}/${pod.name} did not listen on ${pod.ip}:${port}`);
}

/**
 * The client side of tuple reuse: its ephemeral ports from `ports` (a
 * narrow range makes the kernel reopen 5-tuples quickly) and TIME_WAIT
 * sockets reused (`net.ipv4.tcp_tw_reuse=1`).
 */
export function reuseClientPorts(pod: SimPod, ports: readonly [number, number]): void {
  run([
    'ip',
    'netns',
    'exec',
    pod.netns,
    'sysctl',
    '-q',
    '-w',
    `net.ipv4.ip_local_port_range=${ports[0]} ${ports[1]}`,
    'net.ipv4.tcp_tw_reuse=1',
  ]);
}

export interface AbResult {
  /** Requests ab completed. */
  completed: number;
  /** Requests that failed (connect, receive or length errors). */
  failed: number;
  seconds: number;
}

/** `ab -n requests -c concurrency http://ip:port/` from the client pod, without keep-alive. */
export function runAb(
  client: SimPod,
  url: string,
  requests: number,
  concurrency: number,
): Promise<AbResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        client.netns,
        'ab',
        '-q',
        '-r',
        '-n',
        String(requests),
        '-c',
        String(concurrency),
        url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`ab exited ${code}: ${err.trim() || out.trim()}`));
        return;
      }
      resolve({
        completed: Number(/Complete requests:\s+(\d+)/.exec(out)?.[1] ?? 0),
        failed: Number(/Failed requests:\s+(\d+)/.exec(out)?.[1] ?? 0),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}
