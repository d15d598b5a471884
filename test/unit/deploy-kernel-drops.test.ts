/**
 * deploy/kubernetes/components/kernel-drops, rendered with `kubectl
 * kustomize` over the base: the agent container gains BPF and PERFMON (and
 * keeps NET_ADMIN), stays unprivileged, and asks for both deny sources; the
 * base alone has neither.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { skipKubectl as skip } from '../harness/env.js';

const base = new URL('../../deploy/kubernetes', import.meta.url).pathname;

interface Container {
  name: string;
  env?: { name: string; value?: string }[];
  securityContext: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities: { add: string[]; drop: string[] };
  };
}

/** The rendered agent container, with `components` over the base (kustomize wants relative paths). */
function agentContainer(components: string[]): Container {
  const dir = mkdtempSync(join(tmpdir(), 'ft-kustomize-'));
  try {
    const rel = relative(dir, base);
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${rel}]\ncomponents: [${components.map((c) => `${rel}/components/${c}`).join(', ')}]\n`,
    );
    const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    const ds = parseAllDocuments(out)
      .map((d) => d.toJS())
      .find((o) => o.kind === 'DaemonSet');
    return ds.spec.template.spec.containers.find((c: Container) => c.name === 'agent');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(skip)('components/kernel-drops', () => {
  it('adds BPF and PERFMON to NET_ADMIN, drops the rest, stays unprivileged, asks for both deny sources', () => {
    const c = agentContainer(['kernel-drops']);
    expect(c.securityContext.capabilities).toEqual({
      add: ['NET_ADMIN', 'BPF', 'PERFMON'],
      drop: ['ALL'],
    });
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.env).toContainEqual({ name: 'FLOWTRAIL_DENIES_SOURCE', value: 'both' });
    // The base's variables are still there (env merges by name).
    expect(c.env?.map((e) => e.name)).toContain('FLOWTRAIL_NODE_NAME');
  });

  it('the base alone has only NET_ADMIN and no deny source set', () => {
    const c = agentContainer([]);
    expect(c.securityContext.capabilities.add).toEqual(['NET_ADMIN']);
    expect(c.env?.map((e) => e.name)).not.toContain('FLOWTRAIL_DENIES_SOURCE');
  });
});
