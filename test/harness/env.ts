/**
 * Whether this process may build network namespaces, load iptables rules and
 * start moto_server. Outside CI a test that needs them skips with the reason;
 * under CI=true it runs (and fails loudly if the machine lacks them), because
 * a skipped test proves nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const underCI = process.env.CI === 'true' || process.env.CI === '1';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Names of the things missing for kernel tests (empty when all is there). */
export function missingForKernel(): string[] {
  const missing: string[] = [];
  if (!isRoot) missing.push('root');
  for (const tool of ['ip', 'iptables', 'conntrack']) if (!has(tool)) missing.push(tool);
  return missing;
}

export function missingForMoto(): string[] {
  return has('moto_server') || has('python3') ? [] : ['moto_server'];
}

/** True when kernel tests should be skipped (never under CI). */
export const skipKernel = !underCI && missingForKernel().length > 0;
export const skipMoto = !underCI && missingForMoto().length > 0;

if (skipKernel) {
  console.warn(`kernel tests skipped: missing ${missingForKernel().join(', ')}`);
}

/** Debian's chromium, which the report's browser test drives (scripts/host-deps.sh installs it). */
export const CHROMIUM = '/usr/bin/chromium';

export function missingForBrowser(): string[] {
  return existsSync(CHROMIUM) ? [] : [`${CHROMIUM} (apt-get install chromium)`];
}

/** True when the browser test should be skipped (never under CI). */
export const skipBrowser = !underCI && missingForBrowser().length > 0;
if (skipBrowser) console.warn(`browser tests skipped: missing ${missingForBrowser().join(', ')}`);
