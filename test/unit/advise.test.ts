/**
 * `advise` and `policy test` on records shaped like the stars scenario's
 * (test/integration/advise-stars.test.ts runs the real thing on a simulated
 * node): the proposal allows exactly what was allowed, the replay agrees
 * or names the flows that disagree, labels come from records or from an
 * endpoints file, aggregated records work, and the YAML reads back.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffFlows } from '../../src/advise/diff.js';
import { Identities, workloadOf } from '../../src/advise/identity.js';
import { observe } from '../../src/advise/observe.js';
import { propose } from '../../src/advise/propose.js';
import { renderYaml } from '../../src/advise/render.js';
import {
  INTERNET_IP,
  STARS_ALLOW_YAML,
  STARS_DEFAULT_DENY_YAML,
  TALKS,
} from '../../src/demo/stars.js';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { parsePolicyYaml } from '../../src/policy/parse.js';
import { parseWhatIfDiff } from '../../src/report/diff.js';
import {
  STARS_ALLOW_LIST,
  STARS_DIRECTORY,
  starsAllowedSet,
  starsEndpointsYaml,
  starsRecord,
  starsRecords,
} from '../helpers/stars-policy.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;

function run(records: FlowRecord[], ids: Identities, cidrs: string[] = []) {
  const observed = observe(records, ids);
  const proposal = propose([...observed.flows.values()], { cidrs, dns: true });
  const policies = proposal.policies.map((p) => p.policy);
  const replay = diffFlows(observed, { policies, namespaces: [], nodes: [] }, 'latest');
  return { observed, proposal, policies, replay };
}

describe('the stars policies (src/demo/stars.ts) say what the demo does', () => {
  it('default deny denies every talk; with the allow policies exactly the allow-list passes', () => {
    const deny = parsePolicyYaml(STARS_DEFAULT_DENY_YAML, 'deny').policies;
    const allow = parsePolicyYaml(STARS_ALLOW_YAML, 'allow').policies;
    expect(starsAllowedSet(deny)).toEqual([]);
    expect(starsAllowedSet([...deny, ...allow])).toEqual(STARS_ALLOW_LIST);
  });
});

describe('flowtrail advise on stars-shaped records', () => {
  it.each([
    ['labels in the records, kind 1', { labels: true, kind: 1 as const }, undefined],
    [
      'no labels, an endpoints directory, kind 1',
      { labels: false, kind: 1 as const },
      STARS_DIRECTORY,
    ],
  ])(
    '%s: allows exactly the allow-list, denies client → backend, and the replay agrees',
    (_, o, dir) => {
      const records = starsRecords(o);
      const { proposal, policies, replay } = run(records, new Identities(dir, o.labels));
      expect(proposal.policies.map((p) => `${p.policy.namespace}/${p.policy.name}`)).toEqual([
        'client/flowtrail-client',
        'management-ui/flowtrail-management-ui',
        'stars/flowtrail-backend',
        'stars/flowtrail-frontend',
      ]);
      expect(starsAllowedSet(policies)).toEqual(STARS_ALLOW_LIST);
      expect(replay.summary).toMatchObject({
        newlyAllowed: 0,
        newlyDenied: 0,
        records: records.length,
      });
      // The deny phase's records of allowed talks were overturned by later allows.
      expect(replay.summary.superseded).toBe(TALKS.filter((t) => t.allowedBy).length);
      const backend = proposal.policies.find((p) => p.workload === 'stars/backend')!;
      expect(backend.policy.spec.podSelector).toEqual({ matchLabels: { role: 'backend' } });
      expect(backend.policy.spec.ingress).toEqual([
        {
          from: [
            {
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': 'management-ui' },
              },
              podSelector: { matchLabels: { role: 'management-ui' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: 6379 }],
        },
        {
          from: [{ podSelector: { matchLabels: { role: 'frontend' } } }],
          ports: [{ protocol: 'TCP', port: 6379 }],
        },
      ]);
      const frontend = proposal.policies.find((p) => p.workload === 'stars/frontend')!;
      const internet = frontend.rules.find((r) => r.peer === '203.0.113.0/24')!;
      expect(internet.review).toBe('external: 203.0.113.10 widened to 203.0.113.0/24');
      expect(internet.justification).toEqual({
        flows: ['stars/frontend → net/pub 203.0.113.10 443/TCP'],
        records: 1, // the allow record: the deny phase's justified nothing
        connections: 2,
      });
    },
  );

  it('aggregated records (kind 2, no addresses): the internet as every public address, flagged; still exact among pods', () => {
    const { proposal, policies, replay } = run(
      starsRecords({ labels: true, kind: 2 }),
      new Identities(undefined, true),
    );
    expect(replay.summary).toMatchObject({ newlyAllowed: 0, newlyDenied: 0 });
    expect(starsAllowedSet(policies)).toEqual(STARS_ALLOW_LIST);
    const frontend = proposal.policies.find((p) => p.workload === 'stars/frontend')!;
    expect(frontend.rules.find((r) => r.peer === 'the internet')?.review).toMatch(
      /aggregation kind 2/,
    );
  });

  it('the replay lists flows the proposal would change: a /24 that takes in an address seen denied', () => {
    const records = [
      ...starsRecords({ labels: true, kind: 1 }),
      {
        ...starsRecord('frontend', 'internet', 443, 'deny', 2_000, 'src', {
          labels: true,
          kind: 1,
        }),
        dstIP: '203.0.113.99',
      },
    ];
    const { replay } = run(records, new Identities(undefined, true));
    expect(replay.rows.filter((r) => r.change !== 'unchanged')).toEqual([
      expect.objectContaining({
        src: 'stars/frontend',
        dst: 'net/pub 203.0.113.99',
        port: 443,
        observed: 'deny',
        proposed: 'allow',
        change: 'newly-allowed',
        policies: ['stars.flowtrail-frontend'],
      }),
    ]);
    // Given the exact address as a CIDR, the proposal agrees again.
    expect(
      run(records, new Identities(undefined, true), [`${INTERNET_IP}/32`]).replay.summary
        .newlyAllowed,
    ).toBe(0);
  });

  it('without labels and without a directory, says so', () => {
    const { observed } = run(
      starsRecords({ labels: false, kind: 1 }),
      new Identities(undefined, false),
    );
    expect(observed.records).toHaveLength(0);
    expect(observed.unknown[0]).toMatch(
      /labels of management-ui\/management-ui-5b7c9d8f6-t6n2c are not known: .*no --endpoints file or --kubernetes/,
    );
  });

  it('YAML: a comment per rule with its flows and counts; it reads back as the same policies', () => {
    const { proposal, policies } = run(
      starsRecords({ labels: true, kind: 1 }),
      new Identities(undefined, true),
    );
    const yaml = renderYaml(proposal, 'header');
    expect([...yaml.keys()].sort()).toEqual(['client', 'management-ui', 'stars']);
    const stars = yaml.get('stars')!;
    expect(stars).toContain('    # stars/frontend: 1 flow, 2 records, 4 connections\n');
    expect(stars).toContain('#   stars/frontend → stars/backend 6379/TCP');
    expect(stars).toContain('# REVIEW: external: 203.0.113.10 widened to 203.0.113.0/24');
    expect(stars).toContain('# name resolution, added to every policy (--no-dns leaves it out)');
    const back = [...yaml.values()].flatMap((t) => parsePolicyYaml(t, 'x').policies);
    expect(back.sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(
      [...policies].sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
  });
});

describe('advise: verdicts over time and labels', () => {
  it('an allow and a deny of one flow in the same interval: allowed (the traffic got through)', () => {
    const o = { labels: true, kind: 1 as const };
    const records = [
      starsRecord('client', 'frontend', 80, 'deny', 5_000, 'dst', o),
      starsRecord('client', 'frontend', 80, 'allow', 5_000, 'dst', o),
    ];
    const { policies, replay } = run(records, new Identities(undefined, true));
    expect(starsAllowedSet(policies)).toContain('client>frontend:80');
    expect(replay.summary).toMatchObject({ newlyAllowed: 0, newlyDenied: 0, superseded: 1 });
    // Allowed first and denied later: the later deny wins, nothing is allowed.
    const tightened = [
      starsRecord('client', 'frontend', 80, 'allow', 5_000, 'dst', o),
      starsRecord('client', 'frontend', 80, 'deny', 6_000, 'dst', o),
    ];
    expect(starsAllowedSet(run(tightened, new Identities(undefined, true)).policies)).not.toContain(
      'client>frontend:80',
    );
  });

  it('selects by stable labels: pod-template-hash and the like are left out', () => {
    const o = { labels: true, kind: 1 as const };
    const r = starsRecord('client', 'frontend', 80, 'allow', 5_000, 'dst', o);
    r.dstLabels = '[pod-template-hash=5d9b7c8f4,role=frontend]';
    r.srcLabels = '[controller-revision-hash=abc,role=client]';
    const { proposal } = run([r], new Identities(undefined, true));
    const frontend = proposal.policies.find((p) => p.workload === 'stars/frontend')!;
    expect(frontend.policy.spec.podSelector).toEqual({ matchLabels: { role: 'frontend' } });
    expect(frontend.policy.spec.ingress![0]!.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'client' } },
        podSelector: { matchLabels: { role: 'client' } },
      },
    ]);
  });
});

describe('workload names', () => {
  it.each([
    ['frontend-5d9b7c8f4-h2x8k', 'frontend'],
    ['frontend-5d9b7c8f4-*', 'frontend'],
    ['management-ui-5b7c9d8f6-t6n2c', 'management-ui'],
    ['db-0', 'db'],
    ['fluentd-x2x7q', 'fluentd'],
    ['nginx', 'nginx'],
    ['api-server', 'api-server'],
  ])('%s → %s', (name, workload) => expect(workloadOf(name)).toBe(workload));
});

describe('the commands, through the real binary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-advise-'));
  const file = join(dir, 'flows.log');
  writeFileSync(
    file,
    `${starsRecords({ labels: false, kind: 1 })
      .map((r) => encodeRecord(r))
      .join('\n')}\n`,
  );
  const endpoints = join(dir, 'endpoints.yaml');
  writeFileSync(endpoints, starsEndpointsYaml());
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  const since = ['--since', '1970-01-01T00:00:00Z'];

  it('advise --json: policies and an agreeing replay, exit 0; YAML files with --out', () => {
    const r = cli('advise', '--file', file, '--endpoints', endpoints, ...since, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.replay).toMatchObject({
      agrees: true,
      newlyAllowed: 0,
      newlyDenied: 0,
      disagreements: [],
    });
    expect(out.policies).toHaveLength(4);
    const w = cli(
      'advise',
      '--file',
      file,
      '--endpoints',
      endpoints,
      ...since,
      '--out',
      join(dir, 'out'),
    );
    expect(w.status).toBe(0);
    expect(w.stdout).toContain(`${join(dir, 'out', 'stars.yaml')}: 2 policies`);
    expect(w.stdout).toMatch(
      /replay: the proposal reproduces all 6 flows \(17 records\); 5 earlier records were superseded/,
    );
  });

  it('advise without labels or a directory: exit 2 naming the fix', () => {
    const r = cli('advise', '--file', file, ...since);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /flowtrail advise: labels of .* are not known: the records carry none \(flowLogs.includeLabels is off\)/,
    );
  });

  it('policy test: the stars default deny newly denies every allowed flow (exit 1), as CSV; the full set changes nothing (exit 0)', () => {
    const policies = join(dir, 'policies');
    spawnSync('mkdir', ['-p', policies]);
    writeFileSync(join(policies, 'deny.yaml'), STARS_DEFAULT_DENY_YAML);
    const deny = cli(
      'policy',
      'test',
      '--policies',
      policies,
      '--file',
      file,
      '--endpoints',
      endpoints,
      ...since,
      '--csv',
    );
    expect(deny.status).toBe(1);
    const lines = deny.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      'change,source,destination,srcNamespace,dstNamespace,port,protocol,observed,proposed,records,connections,packets,bytes,policies',
    );
    expect(lines.slice(1).every((l) => l.startsWith('newly-denied,'))).toBe(true);
    expect(
      lines.some((l) =>
        l.startsWith(
          'newly-denied,client/client,stars/frontend,client,stars,80,TCP,allow,deny,2,4,20,1240,client.default-deny stars.default-deny',
        ),
      ),
    ).toBe(true);
    writeFileSync(join(policies, 'allow.yaml'), STARS_ALLOW_YAML);
    const all = cli(
      'policy',
      'test',
      '--policies',
      policies,
      '--file',
      file,
      '--endpoints',
      endpoints,
      ...since,
      '--json',
    );
    // The deny phase's records of allowed talks are now allowed: the only changes.
    const diff = JSON.parse(all.stdout);
    expect(diff.summary).toMatchObject({ newlyDenied: 0, newlyAllowed: 5 });
    expect(all.status).toBe(1);
  });

  it('policy test --json is a what-if diff `report --html --diff` reads and shows', () => {
    const deny = join(dir, 'deny-only.yaml');
    writeFileSync(deny, STARS_DEFAULT_DENY_YAML);
    const r = cli(
      'policy',
      'test',
      '--policies',
      deny,
      '--file',
      file,
      '--endpoints',
      endpoints,
      ...since,
      '--json',
    );
    expect(r.status).toBe(1);
    const diffFile = join(dir, 'diff.json');
    writeFileSync(diffFile, r.stdout);
    const d = parseWhatIfDiff(JSON.parse(r.stdout), 'diff.json');
    expect(d.newlyAllowed).toEqual([]);
    expect(d.newlyDenied).toContainEqual({
      srcNamespace: 'client',
      srcWorkload: 'client',
      dstNamespace: 'stars',
      dstWorkload: 'frontend',
      port: 80,
      proto: 'TCP',
      count: 4,
      policy: 'client.default-deny stars.default-deny',
    });
    expect(d.newlyDenied).toContainEqual(
      expect.objectContaining({ dstNamespace: '-', dstWorkload: 'pub', port: 443, count: 2 }),
    );
    const html = join(dir, 'report.html');
    const page = cli(
      'report',
      '--file',
      file,
      ...since,
      '--html',
      html,
      '--diff',
      diffFile,
      '--json',
    );
    expect(page.status).toBe(0);
    const text = readFileSync(html, 'utf8');
    expect(text).toContain('<h2 id="what-if">What-if: flowtrail policy test --policies');
    expect(text).toMatch(
      /recorded flows would be <b class="deny-text">newly denied<\/b> \(5 groups\)/,
    );
  });

  it('policy test refuses a bad policy file with its path and field', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: x }\nspec: { podSelector: {}, ingress: [{ ports: [{ port: 0 }] }] }\n',
    );
    const r = cli(
      'policy',
      'test',
      '--policies',
      bad,
      '--file',
      file,
      '--endpoints',
      endpoints,
      ...since,
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^flowtrail policy test: .*bad\.yaml \(document 1\): spec\.ingress\[0\]\.ports\[0\]\.port/,
    );
  });
});
