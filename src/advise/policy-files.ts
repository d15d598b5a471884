/** NetworkPolicies from a directory of YAML/JSON files (or one file), as `kubectl apply -f DIR` reads them. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicyYaml } from '../policy/parse.js';
import type { NetworkPolicy } from '../policy/types.js';
import { FlowtrailError } from '../util/errors.js';

export function readPolicies(path: string): { policies: NetworkPolicy[]; files: number } {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => /\.(ya?ml|json)$/.test(f))
          .sort()
          .map((f) => join(path, f))
      : [path];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new FlowtrailError('ERR_INPUT', `cannot read ${path} (${code})`, { path, code });
  }
  const policies: NetworkPolicy[] = [];
  for (const f of files) policies.push(...parsePolicyYaml(readFileSync(f, 'utf8'), f).policies);
  const seen = new Set<string>();
  for (const p of policies) {
    const key = `${p.namespace}/${p.name}`;
    if (seen.has(key))
      throw new FlowtrailError('ERR_POLICY', `${path}: NetworkPolicy ${key} is defined twice`, {
        key,
      });
    seen.add(key);
  }
  return { policies, files: files.length };
}
