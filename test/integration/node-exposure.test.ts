/**
 * What the node exposes (issue 19, item 8): the agent runs on a simulated
 * node with the `http` settings of the shipped manifests (rendered by
 * `kubectl kustomize deploy/kubernetes`), in the node's network namespace
 * as with hostNetwork. The kubelet's probe address (the node's loopback)
 * answers; a pod on the node reaching for the node's address on the same
 * port gets nothing: /metrics, /healthz and /readyz are not open to every
 * pod.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { inNs, stopProcess } from '../../src/sim/netns.js';
import { SimNode, type SimPod } from '../../src/sim/simnode.js';
import { skipKernel, underCI } from '../harness/env.js';
import { startAgent, writeAgentConfig } from '../helpers/agent.js';

const KUSTOMIZATION = new URL('../../deploy/kubernetes', import.meta.url).pathname;

function hasKubectl(): boolean {
  return spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
}
const skip = skipKernel || (!underCI && !hasKubectl());

describe.skipIf(skip)('what the node exposes with the shipped manifests', () => {
  let node: SimNode;
  let pod: SimPod;
  let agent: ChildProcess | undefined;
  let http: { listen: string };
  const dir = mkdtempSync(join(tmpdir(), 'ft-expose-'));

  const curl = (netns: string, url: string) => {
    const argv = inNs(netns, [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '3',
      url,
    ]);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    return { exit: r.status, code: r.stdout };
  };

  beforeAll(async () => {
    const rendered = parseAllDocuments(
      execFileSync('kubectl', ['kustomize', KUSTOMIZATION], { encoding: 'utf8' }),
    ).map((d) => d.toJS() as { kind: string; data?: Record<string, string> });
    const shipped = parse(rendered.find((d) => d.kind === 'ConfigMap')!.data!['config.yaml']!) as {
      http: { listen: string };
    };
    http = shipped.http;
    node = await SimNode.create({ nodeName: 'ip-10-0-0-1' });
    pod = node.addPod({ namespace: 'default', name: 'curious-0', ip: '10.244.5.2' });
    const config = writeAgentConfig(dir, node, [
      `sinks: { file: { path: ${join(dir, 'flows.log')} } }`,
      `spool: { dir: ${join(dir, 'spool')} }`,
      `http: { listen: '${http.listen}' }`,
    ]);
    agent = await startAgent(node, config, undefined, /serving \/healthz \/readyz \/metrics/);
  }, 60_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent);
    await node?.destroy();
  });

  it("the kubelet's probe address answers", () => {
    const port = http.listen.slice(http.listen.lastIndexOf(':') + 1);
    expect(curl(node.netns, `http://127.0.0.1:${port}/healthz`)).toEqual({ exit: 0, code: '200' });
  });

  it("a pod on the node cannot reach them at the node's address", () => {
    const port = http.listen.slice(http.listen.lastIndexOf(':') + 1);
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const r = curl(pod.netns, `http://${node.hostIps[0]}:${port}${path}`);
      expect(r.code).toBe('000');
      expect(r.exit).toBe(7); // curl: failed to connect
    }
  });
});
