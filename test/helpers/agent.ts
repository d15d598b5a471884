import type { ChildProcess } from 'node:child_process';

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
