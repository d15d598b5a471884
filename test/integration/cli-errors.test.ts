/**
 * Errors that say what is wrong (issue 19, item 4), through the real
 * binary, in a network namespace of the test's own:
 * - capture without CAP_NET_ADMIN (as `nobody`, and as root with the
 *   capability dropped from the bounding set) says it needs CAP_NET_ADMIN,
 *   not that the NFLOG group is bound by another process; root binds fine;
 * - `capture --dump` without it names EPERM and the capability;
 * - `http.listen: 127.0.0.1:99999` fails validation (exit 2, naming the
 *   key), --print-config included;
 * - sinks.cloudwatch without a region from the file or the environment:
 *   exit 2 naming the key (doctor fails aws.region), never us-east-1;
 * - a spool.dir that is a file, or on a read-only filesystem, and an
 *   endpoints file with `ip: banana`: one clear line naming the key or
 *   entry, exit 1, no Node stack.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, inNs, removeNamespace, uniqueName } from '../../src/sim/netns.js';
import { skipKernel } from '../harness/env.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(REPO, 'bin/flowtrail.js');

describe.skipIf(skipKernel)('errors that say what is wrong', () => {
  const ns = uniqueName('ftcli', 5);
  const dir = mkdtempSync(join(tmpdir(), 'ft-clierr-'));
  const roFs = join(dir, 'ro');
  let mounted = false;

  // `nobody` cannot reach a checkout under a 0700 directory (a clone in `mktemp -d`), so its
  // runs see the checkout bind-mounted at a 0755 path, in a mount namespace of their own.
  const view = mkdtempSync(join(tmpdir(), 'ft-clirepo-'));
  chmodSync(view, 0o755);
  const inView = (path: string) =>
    path.startsWith(REPO) ? join(view, relative(REPO, path)) : path;
  const nobody = [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    'mount --bind "$1" "$2" && shift 2 && exec "$@"',
    'sh',
    REPO,
    view,
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    '--inh-caps=-all',
  ];

  /** Runs the CLI in the test's namespace, optionally through setpriv (paths as `as` sees them). */
  function cli(args: string[], as: string[] = [], env: NodeJS.ProcessEnv = process.env) {
    const see = as === nobody ? inView : (path: string) => path;
    const argv = inNs(ns, [...as, see(process.execPath), see(CLI), ...args]);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  }
  const rootWithoutNetAdmin = ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin'];

  function agentConfig(name: string, lines: string[]): string {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(
      path,
      [
        'clusterName: ci',
        'nodeName: node-1',
        `sinks: { file: { path: ${join(dir, 'f.log')} } }`,
        "http: { listen: '' }",
        ...lines,
      ].join('\n'),
    );
    return path;
  }

  beforeAll(() => {
    createNamespace(ns);
    mkdirSync(roFs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', roFs]);
    mounted = true;
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', roFs]);
    removeNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
    rmdirSync(view); // never recursive: the checkout is bind-mounted here inside the runs
  });

  it('capture --no-conntrack without CAP_NET_ADMIN says so, not "already bound"; root binds the same groups', () => {
    for (const as of [nobody, rootWithoutNetAdmin]) {
      const r = cli(['capture', '--no-conntrack', '--duration', '1'], as);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        /binding NFLOG group 1 was refused \(EPERM\): this process needs CAP_NET_ADMIN/,
      );
      expect(r.stderr).not.toMatch(/already bound/);
    }
    const root = cli(['capture', '--no-conntrack', '--duration', '1']);
    expect(root.stderr).toMatch(/listening \(conntrack off; NFLOG groups 1,2\)/);
    expect(root.status).toBe(0);
  });

  it('capture --dump without CAP_NET_ADMIN names EPERM and the capability, not "errno 1"', () => {
    const r = cli(['capture', '--dump'], nobody);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /conntrack dump refused by the kernel \(EPERM\): this process needs CAP_NET_ADMIN/,
    );
    expect(r.stderr).not.toMatch(/errno 1/);
  });

  it('http.listen with a port above 65535 is a configuration error (exit 2) naming the key, --print-config too', () => {
    const cfg = agentConfig('listen', []);
    for (const extra of [['--print-config'], []]) {
      const r = cli(['agent', '--config', cfg, '--set', 'http.listen=127.0.0.1:99999', ...extra]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(
        'http.listen: expected host:port with a port from 0 to 65535, got "127.0.0.1:99999"',
      );
    }
  });

  it('sinks.cloudwatch with no region from anywhere is a configuration error (exit 2), never a guessed us-east-1', () => {
    const cfg = join(dir, 'region.yaml');
    writeFileSync(
      cfg,
      `clusterName: ci\nnodeName: node-1\nsinks: { cloudwatch: {} }\nspool: { dir: ${join(dir, 'spool-region')} }\nhttp: { listen: '' }\n`,
    );
    const env = { ...process.env, AWS_REGION: '', AWS_DEFAULT_REGION: '' };
    const r = cli(['agent', '--config', cfg], [], env);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'sinks.cloudwatch.region: required, as neither AWS_REGION nor AWS_DEFAULT_REGION is set',
    );
    const doctor = cli(['doctor', '--config', cfg, '--json'], [], env);
    const checks = JSON.parse(doctor.stdout).checks as { id: string; status: string }[];
    expect(checks.find((c) => c.id === 'aws.region')?.status).toBe('fail');
    expect(checks.some((c) => c.id === 'aws.credentials')).toBe(false);
  });

  it('a spool.dir that is a file or on a read-only filesystem: one clear error naming spool.dir, no stack', () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const cases: [string, RegExp][] = [
      [file, /spool\.dir .*not-a-dir: cannot (create|use) it \((EEXIST|ENOTDIR): /],
      [
        join(file, 'spool'),
        /spool\.dir .*not-a-dir\/spool: cannot create it \(ENOTDIR: a path component is a file/,
      ],
      [
        join(roFs, 'spool'),
        /spool\.dir .*ro\/spool: cannot create it \(EROFS: it is on a read-only filesystem\)/,
      ],
    ];
    for (const [spool, message] of cases) {
      const r = cli(['agent', '--config', agentConfig('spool', [`spool: { dir: ${spool} }`])]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr).not.toMatch(/"stack"/);
    }
  });

  it('an endpoints file with ip: banana stops the agent with the entry named', () => {
    const endpoints = join(dir, 'endpoints.yaml');
    writeFileSync(endpoints, 'pods:\n  - { namespace: stars, name: backend-0, ip: banana }\n');
    const r = cli([
      'agent',
      '--config',
      agentConfig('banana', [
        `endpoints: { file: ${endpoints} }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
      ]),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'pods[0] (stars/backend-0).ip: expected an IPv4 or IPv6 address, got \\"banana\\"',
    );
  });
});
