/**
 * Network-namespace plumbing for the simulated node: run a command in a
 * namespace (argv only, no shell strings), and a cleanup registry so every
 * namespace and process made here is removed on teardown and when the
 * process exits, a failing test included.
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { FlowtrailError } from '../util/errors.js';

export class CommandError extends FlowtrailError {
  constructor(argv: readonly string[], status: number | null, stderr: string) {
    super(
      'ERR_COMMAND',
      `command failed (${status ?? 'signal'}): ${argv.join(' ')}: ${stderr.trim()}`,
      {
        argv,
        status,
        stderr,
      },
    );
  }
}

/** Runs argv and returns stdout; throws CommandError with the command and stderr. */
export function run(
  argv: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): string {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('run: empty argv');
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: options.input,
      timeout: options.timeoutMs ?? 30_000,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 256 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { status?: number | null; stderr?: string | Buffer };
    throw new CommandError(argv, e.status ?? null, String(e.stderr ?? (err as Error).message));
  }
}

export function inNs(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** A short unique name: prefix + pid + random, ≤ 15 chars for interface names. */
export function uniqueName(prefix: string, length = 6): string {
  return `${prefix}${randomBytes(8).toString('hex').slice(0, length)}`;
}

// --- cleanup registry ------------------------------------------------------

const namespaces = new Set<string>();
const processes = new Set<ChildProcess>();
let hooked = false;

function cleanupSync(): void {
  for (const child of processes) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      try {
        child.kill('SIGKILL');
      } catch {}
    }
  }
  processes.clear();
  for (const ns of namespaces) deleteNamespaceSync(ns);
  namespaces.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupSync();
      process.kill(process.pid, signal);
    });
  }
}

export function deleteNamespaceSync(ns: string): void {
  // Kill whatever still runs inside, then delete; ignore "not found".
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split(/\s+/)
      .filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  } catch {}
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {}
}

export function createNamespace(ns: string): void {
  hook();
  run(['ip', 'netns', 'add', ns]);
  namespaces.add(ns);
  run(inNs(ns, ['ip', 'link', 'set', 'lo', 'up']));
}

export function removeNamespace(ns: string): void {
  deleteNamespaceSync(ns);
  namespaces.delete(ns);
}

/**
 * Tracks a child (spawned detached, in its own process group) so it is
 * killed on teardown, on exit and on SIGINT/SIGTERM/SIGHUP of this process.
 */
export function trackProcess(child: ChildProcess): ChildProcess {
  hook();
  processes.add(child);
  child.once('exit', () => processes.delete(child));
  return child;
}

/** Spawns argv inside `ns` in its own process group; tracked for cleanup. */
export function spawnInNs(
  ns: string,
  argv: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  hook();
  const full = inNs(ns, argv);
  const child = spawn(full[0]!, full.slice(1), { detached: true, stdio: 'pipe', ...options });
  processes.add(child);
  child.once('exit', () => processes.delete(child));
  return child;
}

/** Stops a tracked child: SIGTERM, then SIGKILL after a grace period. */
export async function stopProcess(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    processes.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  } catch {}
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  await exited;
  clearTimeout(timer);
  processes.delete(child);
}

/** Namespaces currently registered (for tests asserting teardown). */
export function liveNamespaces(): string[] {
  return [...namespaces];
}

export function listSystemNamespaces(): string[] {
  return run(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}
