/** Runs the built CLI (bin/flowtrail.js) as a user would, with test AWS credentials. */
import { spawn } from 'node:child_process';

export const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `flowtrail ARGS…`, its exit status and output; `env` is added to this process's environment. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
