/** Runs the built CLI (bin/flowtrail.js) as a user would, with test AWS credentials. */
import { spawn } from 'node:child_process';

export const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /**
   * Close the reading end of the child's stdout, as `| head` does: `at-once`
   * before the child writes anything, `after-first-line` once a line came.
   */
  closeStdout?: 'at-once' | 'after-first-line';
}

/** This process's environment without the colour switches: each test says which it sets. */
function baseEnv(): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _f, NO_COLOR: _n, ...env } = process.env;
  return env;
}

/** `flowtrail ARGS…`, its exit status and output; `env` is added to this process's environment. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: CliOptions = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        ...baseEnv(),
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    if (options.closeStdout === 'at-once') child.stdout.destroy();
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (options.closeStdout === 'after-first-line' && stdout.includes('\n'))
        child.stdout.destroy();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** A word for sh -c. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `flowtrail ARGS…` on a pseudo-terminal (util-linux script(1)), as a person
 * at a terminal runs it: its stdout is a TTY. Returns what the terminal got.
 */
export function runCliOnTerminal(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const command = [process.execPath, CLI, ...args].map(shellQuote).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
      env: { ...baseEnv(), TERM: 'xterm-256color', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}
