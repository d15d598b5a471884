import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Resolves when the child's stderr (JSON logs) matches; rejects on exit or timeout, with the log. */
export function waitForLog(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${text}`)),
      timeoutMs,
    );
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${text}`)));
  });
}

/**
 * Writes the node's endpoints file and an agent config (cluster `ci`, the
 * node's name, that endpoints file, then `lines`) into `dir`; returns the
 * config's path.
 */
export function writeAgentConfig(
  dir: string,
  node: { nodeName: string; endpointsYaml(): string },
  lines: readonly string[],
): string {
  const endpoints = join(dir, 'endpoints.yaml');
  writeFileSync(endpoints, node.endpointsYaml());
  const path = join(dir, 'flowtrail.yaml');
  writeFileSync(
    path,
    [
      'clusterName: ci',
      `nodeName: ${node.nodeName}`,
      `endpoints: { file: ${endpoints} }`,
      ...lines,
    ].join('\n'),
  );
  return path;
}

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;

/** `flowtrail agent --config PATH` in the node's namespace (moto's test credentials), once it started. */
export async function startAgent(
  node: { spawn(argv: readonly string[], options?: SpawnOptions): ChildProcess },
  config: string,
  cli = CLI,
  started: RegExp = /agent started/,
): Promise<ChildProcess> {
  const agent = node.spawn([process.execPath, cli, 'agent', '--config', config], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
  });
  await waitForLog(agent, started, 20_000);
  return agent;
}
