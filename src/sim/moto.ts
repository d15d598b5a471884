/**
 * A local CloudWatch for tests and the demo: moto_server on 127.0.0.1 (in a
 * network namespace when asked, since the agent's 127.0.0.1 is its own
 * namespace's loopback), started on a free port and stopped on teardown.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { inNs, trackProcess } from './netns.js';

export interface Moto {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

function hasMotoServer(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v moto_server'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** True when moto can be started here (moto_server or python3 -m moto.server). */
export function motoAvailable(): boolean {
  if (hasMotoServer()) return true;
  try {
    execFileSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function answers(url: string, netns: string | undefined): Promise<boolean> {
  if (netns === undefined) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return true;
    } catch {
      return false;
    }
  }
  try {
    execFileSync(
      'ip',
      ['netns', 'exec', netns, 'curl', '-s', '-o', '/dev/null', '--max-time', '1', url],
      {
        stdio: 'ignore',
      },
    );
    return true;
  } catch {
    return false;
  }
}

export async function startMoto(
  options: { netns?: string; port?: number; timeoutMs?: number } = {},
): Promise<Moto> {
  // Inside a fresh namespace any port is free; on the host ask the kernel.
  const port = options.port ?? (options.netns ? 5000 : await freePort());
  const base = hasMotoServer()
    ? ['moto_server', '-H', '127.0.0.1', '-p', String(port)]
    : ['python3', '-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)];
  const argv = options.netns ? inNs(options.netns, base) : base;
  const child = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Killed with the rest of the test world on exit and on signals.
  trackProcess(child);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4_000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!(await answers(`${endpoint}/moto-api/`, options.netns))) {
    if (child.exitCode !== null)
      throw new Error(`moto_server exited (${child.exitCode}): ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `moto_server did not answer on ${endpoint} within ${options.timeoutMs ?? 30_000} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    endpoint,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {}
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {}
      }, 3_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** SDK client settings for moto (its credentials are not checked). */
export function awsTestConfig(endpoint: string) {
  return {
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

const CW_READ = new URL('../../scripts/cw-read.mjs', import.meta.url).pathname;

/** Runs scripts/cw-read.mjs (optionally inside a namespace) and parses its JSON. */
export function readFromEmulator(
  endpoint: string,
  netns: string | undefined,
  args: string[],
): unknown {
  const argv = [process.execPath, CW_READ, endpoint, ...args];
  const full = netns ? inNs(netns, argv) : argv;
  const out = execFileSync(full[0]!, full.slice(1), {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  return JSON.parse(out);
}

export function readLogEvents(
  endpoint: string,
  netns: string | undefined,
  group: string,
  stream: string,
): { timestamp: number; message: string }[] {
  return readFromEmulator(endpoint, netns, ['events', group, stream]) as {
    timestamp: number;
    message: string;
  }[];
}
