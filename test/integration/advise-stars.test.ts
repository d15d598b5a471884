/**
 * Issue #21's round trip on the stars scenario, with real parts: the demo
 * runs on a simulated node (network namespaces, real TCP, iptables rules
 * with NFLOG, conntrack, the real agent writing records to a file). Then:
 * (1) the NetworkPolicy evaluator, given the stars policies as Kubernetes
 * objects (src/demo/stars.ts), gives every recorded flow the verdict the
 * node's own iptables rules gave it; (2) `flowtrail advise` from those
 * records, labels in them, proposes policies that allow exactly the stars
 * allow-list and deny client → backend, and its replay agrees; (3) the same
 * from records without labels and the demo's endpoints file; (4) `policy
 * test` with the stars policies newly denies nothing that was allowed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/run.js';
import { STARS_ALLOW_YAML, STARS_DEFAULT_DENY_YAML } from '../../src/demo/stars.js';
import { decodeRecord, encodeRecord } from '../../src/format/codec.js';
import { PolicyEvaluator } from '../../src/policy/evaluate.js';
import { decidingPolicies } from '../../src/policy/naming.js';
import { parseNetworkPolicy, parsePolicyYaml } from '../../src/policy/parse.js';
import type { NetworkPolicy } from '../../src/policy/types.js';
import { skipKernel } from '../harness/env.js';
import {
  STARS_ALLOW_LIST,
  STARS_KEY_OF_IP,
  STARS_POLICY_PODS,
  starsAllowedSet,
} from '../helpers/stars-policy.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;

describe.skipIf(skipKernel)(
  'advise and the evaluator on the stars scenario (simulated node)',
  () => {
    it('the evaluator agrees with the node, advise proposes exactly the allow-list, the replay agrees', async () => {
      const workDir = join(mkdtempSync(join(tmpdir(), 'ft-advise-stars-')), 'work');
      const quiet = new Writable({ write: (_c, _e, cb) => cb() });
      const demo = await runDemo({
        durationSeconds: 12,
        flushSeconds: 2,
        keep: false,
        cloudwatch: 'none',
        workDir,
        json: true,
        out: quiet,
      });
      const records = demo.records.filter((r) => r.proto === 6);
      expect(records.length).toBeGreaterThan(10);

      // (1) The node's verdicts (iptables NFLOG deny, conntrack allow) against the evaluator's.
      const deny = parsePolicyYaml(STARS_DEFAULT_DENY_YAML, 'deny').policies;
      const allow = parsePolicyYaml(STARS_ALLOW_YAML, 'allow').policies;
      const before = new PolicyEvaluator({
        namespaces: [],
        pods: STARS_POLICY_PODS,
        policies: deny,
      });
      const after = new PolicyEvaluator({
        namespaces: [],
        pods: STARS_POLICY_PODS,
        policies: [...deny, ...allow],
      });
      let checked = 0;
      const disagreements: string[] = [];
      for (const r of records) {
        // The allow rules went in right after the boundary second; intervals straddling it are left out.
        const ev =
          r.endTime <= demo.phaseBoundary
            ? before
            : r.startTime >= demo.phaseBoundary + 2
              ? after
              : undefined;
        if (!ev) continue;
        checked++;
        const v = ev.evaluate({
          src: r.srcIP,
          dst: r.dstIP,
          proto: r.proto,
          dport: r.dstPort as number,
        });
        if ((v.allowed ? 'allow' : 'deny') !== r.action) disagreements.push(encodeRecord(r));
        if (
          ev === after &&
          STARS_KEY_OF_IP.get(r.srcIP) === 'client' &&
          STARS_KEY_OF_IP.get(r.dstIP) === 'backend'
        )
          expect(decidingPolicies(v)).toEqual([
            'client.client-policy',
            'client.default-deny',
            'stars.backend-policy',
            'stars.default-deny',
          ]);
      }
      expect(disagreements).toEqual([]);
      expect(checked).toBeGreaterThan(records.length / 2);
      expect(
        records.some((r) => r.action === 'deny' && r.startTime >= demo.phaseBoundary + 2),
      ).toBe(true);
      expect(records.some((r) => r.action === 'allow')).toBe(true);

      // (2) advise from the records as the agent wrote them (labels on).
      const file = join(workDir, 'flowlogs.log');
      const since = new Date((records[0]!.startTime - 3600) * 1000).toISOString();
      const cli = (...args: string[]) =>
        spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
      const withLabels = cli('advise', '--file', file, '--since', since, '--json');
      expect(withLabels.stderr).toBe('');
      expect(withLabels.status).toBe(0);
      const proposal = JSON.parse(withLabels.stdout);
      expect(proposal.replay).toMatchObject({ agrees: true, newlyAllowed: 0, newlyDenied: 0 });
      expect(proposal.replay.superseded).toBeGreaterThan(0); // the deny phase's records of allowed talks
      const proposed: NetworkPolicy[] = proposal.policies.map((p: { policy: unknown }) =>
        parseNetworkPolicy(p.policy, 'proposal'),
      );
      expect(starsAllowedSet(proposed)).toEqual(STARS_ALLOW_LIST);
      expect(starsAllowedSet(proposed)).not.toContain('client>backend:6379');

      // (3) The same records without labels, who-is-who from the demo's endpoints file.
      const bare = join(workDir, 'bare.log');
      writeFileSync(
        bare,
        readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => encodeRecord({ ...decodeRecord(l), srcLabels: '-', dstLabels: '-' }))
          .join('\n'),
      );
      const noLabels = cli(
        'advise',
        '--file',
        bare,
        '--since',
        since,
        '--endpoints',
        join(workDir, 'endpoints.yaml'),
        '--json',
      );
      expect(noLabels.status).toBe(0);
      const again = JSON.parse(noLabels.stdout);
      expect(again.policies.map((p: { policy: unknown }) => p.policy)).toEqual(
        proposal.policies.map((p: { policy: unknown }) => p.policy),
      );

      // (4) What-if with the stars policies: nothing allowed today would be denied.
      const dir = join(workDir, 'policies');
      spawnSync('mkdir', ['-p', dir]);
      writeFileSync(join(dir, 'deny.yaml'), STARS_DEFAULT_DENY_YAML);
      writeFileSync(join(dir, 'allow.yaml'), STARS_ALLOW_YAML);
      const whatIf = cli(
        'policy',
        'test',
        '--policies',
        dir,
        '--file',
        file,
        '--since',
        since,
        '--json',
      );
      const diff = JSON.parse(whatIf.stdout);
      expect(diff.summary.newlyDenied).toBe(0);
      expect(diff.summary.records).toBe(records.length);
    }, 180_000);
  },
);
