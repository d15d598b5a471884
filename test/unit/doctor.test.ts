import { describe, expect, it } from 'vitest';
import {
  describeHolder,
  parseNetlinkSockets,
  parseNflogInstances,
} from '../../src/doctor/holders.js';
import { checkNflogRules, parseIptablesSave, parseNftRuleset } from '../../src/doctor/policy.js';
import { formatReport } from '../../src/doctor/run.js';

describe('doctor: NFLOG rules', () => {
  it('reads NFLOG targets from iptables-save, quoted or not, group 0 by default', () => {
    const text = [
      '*filter',
      ':FORWARD ACCEPT [0:0]',
      '-A ft-policy -d 10.244.2.3/32 -p tcp -m tcp --dport 8080 -j NFLOG --nflog-prefix "API|default.allow-api" --nflog-group 1',
      '-A ft-policy -j NFLOG --nflog-prefix DPI|default.default-deny --nflog-group 2',
      '-A FORWARD -j NFLOG',
      '-A FORWARD -j DROP',
      'COMMIT',
    ].join('\n');
    expect(parseIptablesSave(text, 'iptables')).toEqual([
      { source: 'iptables', group: 1, prefix: 'API|default.allow-api' },
      { source: 'iptables', group: 2, prefix: 'DPI|default.default-deny' },
      { source: 'iptables', group: 0, prefix: '' },
    ]);
  });

  it('reads log group statements from nft list ruleset', () => {
    const text = [
      'table inet filter {',
      '  chain forward {',
      '    ip daddr 10.244.1.5 tcp dport 22 log prefix "DPI|default.no-ssh" group 2 drop',
      '    log group 5',
      '    counter packets 0 bytes 0 xt target "NFLOG"',
      '  }',
      '}',
    ].join('\n');
    expect(parseNftRuleset(text)).toEqual([
      { source: 'nftables', group: 2, prefix: 'DPI|default.no-ssh' },
      { source: 'nftables', group: 5, prefix: '' },
    ]);
  });

  it('fails without rules for the groups, points at the groups that do have rules, warns on bad prefixes', () => {
    const none = checkNflogRules([1, 2], {
      rules: [{ source: 'nftables', group: 5, prefix: '' }],
      notes: [],
    });
    expect(none).toHaveLength(1);
    expect(none[0]).toMatchObject({ id: 'policy.nflog-rules', status: 'fail' });
    expect(none[0]!.fix).toMatch(/\(5\)/);
    const some = checkNflogRules([1, 2], {
      rules: [
        { source: 'iptables', group: 1, prefix: 'API|default.allow-api' },
        { source: 'iptables', group: 2, prefix: 'my custom prefix' },
      ],
      notes: ['nft is not installed'],
    });
    expect(some.map((c) => [c.id, c.status])).toEqual([
      ['policy.nflog-rules', 'ok'],
      ['policy.prefixes', 'warn'],
    ]);
    expect(some[0]!.found).toMatch(/group 1: 1, group 2: 1\) \(nft is not installed\)/);
    expect(some[1]!.found).toMatch(/"my custom prefix"/);
  });
});

describe('doctor: report', () => {
  it('marks each check, shows the fix of what is not ok, and ends with the verdict', () => {
    const text = formatReport({
      ok: false,
      checks: [
        { id: 'a', title: 'A', status: 'ok', found: 'fine' },
        { id: 'b', title: 'B', status: 'fail', found: 'broken', fix: 'mend it' },
        { id: 'c', title: 'C', status: 'warn', found: 'meh', fix: 'tune it' },
        { id: 'd', title: 'D', status: 'skip', found: 'not configured' },
      ],
    });
    expect(text).toBe(
      [
        '✓ A: fine',
        '✗ B: broken',
        '    fix: mend it',
        '! C: meh',
        '    fix: tune it',
        '- D: not configured',
        'not ready: 1 check failed',
        '',
      ].join('\n'),
    );
  });
});

describe('who holds an NFLOG group', () => {
  it('parses /proc/net/netfilter/nfnetlink_log and /proc/net/netlink', () => {
    expect(
      parseNflogInstances('    7  11485     0 2   128      1  1\n    1 4001 0 2 128 1 1\n'),
    ).toEqual([
      { group: 7, portid: 11485 },
      { group: 1, portid: 4001 },
    ]);
    const netlink = `sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
000000003b3cd3bc 0   0          00000000 0        0        0     2        0        2616157
00000000b6dbb87c 12  11485      00000000 0        0        0     2        0        2616163
`;
    expect(parseNetlinkSockets(netlink)).toEqual([
      { protocol: 0, portid: 0, inode: 2616157 },
      { protocol: 12, portid: 11485, inode: 2616163 },
    ]);
  });

  it('names the process when /proc shows it, else the netlink port', () => {
    expect(describeHolder({ portid: 9, pid: 42, command: 'ulogd -d' })).toBe(
      'pid 42 (ulogd -d), netlink port 9',
    );
    expect(describeHolder({ portid: 9 })).toBe('netlink port 9');
    expect(describeHolder({ portid: 9, pid: 42, command: 'x'.repeat(300) })).toMatch(
      /^pid 42 \(x{237}\.\.\.\), netlink port 9$/,
    );
  });
});
