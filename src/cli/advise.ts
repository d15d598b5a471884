/**
 * `flowtrail advise`: least-privilege NetworkPolicies per workload from the
 * flows the records saw allowed, as YAML per namespace (or --json), then a
 * replay of every recorded flow against them: the command says the
 * proposal reproduces what was observed, or lists the flows it would
 * change, and exits 1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import { diffFlows, type PolicyDiff } from '../advise/diff.js';
import { observe } from '../advise/observe.js';
import { propose } from '../advise/propose.js';
import { adviseJson, renderYaml } from '../advise/render.js';
import { splitCidr } from '../policy/peers.js';
import { addFlowInputOptions, type FlowInputFlags, loadFlowInput } from './flow-input.js';
import { collect } from './options.js';

interface AdviseFlags extends FlowInputFlags {
  cidr: string[];
  dns: boolean;
  out?: string;
  json?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail advise: ${message}\n`);
  process.exit(2);
}

/** The disagreeing flows as a table (also used by `policy test`). */
export function diffTable(
  diff: PolicyDiff,
  rows = diff.rows.filter((r) => r.change !== 'unchanged'),
): string {
  const t = new Table({
    head: [
      'change',
      'source',
      'destination',
      'port',
      'observed',
      'proposed',
      'records',
      'connections',
      'deciding policies',
    ],
    style: { head: ['cyan'] },
  });
  for (const r of rows)
    t.push([
      r.change,
      r.src,
      r.dst,
      `${r.port}/${r.protocol}`,
      r.observed,
      r.proposed,
      r.records,
      r.connections,
      r.policies.join(' ') || '-',
    ]);
  return t.toString();
}

export function registerAdvise(program: Command): void {
  addFlowInputOptions(
    program
      .command('advise')
      .description(
        'propose least-privilege NetworkPolicies per workload from observed flows, and replay them',
      ),
  )
    .option(
      '--cidr <cidr>',
      'allow external addresses inside this CIDR as the CIDR, not as their /24 (repeatable)',
      collect,
      [],
    )
    .option('--no-dns', 'leave out the egress rule to kube-dns (UDP and TCP 53) every policy gets')
    .option(
      '--out <dir>',
      'write one YAML file per namespace (<namespace>.yaml) into DIR instead of stdout',
    )
    .option('--json', 'the policies, the rules with their justification, and the replay, as JSON')
    .addHelpText(
      'after',
      '\nEvery workload seen gets a policy that isolates it both ways and allows the peers and ports\n' +
        'whose latest record said allow. Then every recorded flow is judged by the proposal alone: each\n' +
        "flow's latest verdict must come out the same (earlier verdicts a later record overturned are\n" +
        'counted as superseded). YAML goes to stdout (or --out), the replay verdict to stderr.\n' +
        'Exit codes: 0 the replay agrees with every flow, 1 some flows disagree (listed), 2 bad input.',
    )
    .action(async (flags: AdviseFlags) => {
      for (const c of flags.cidr) {
        try {
          splitCidr(c);
        } catch {
          fail(`--cidr: expected a CIDR such as 203.0.113.0/24, got ${JSON.stringify(c)}`);
        }
      }
      const input = await loadFlowInput(flags, fail);
      if (input.records.length === 0) fail(`no records in the window from ${input.source}`);
      const observed = observe(input.records, input.ids);
      if (observed.unknown.length > 0 && observed.records.length === 0)
        fail(`${observed.unknown[0]}`);
      const proposal = propose([...observed.flows.values()], {
        namespace: flags.namespace,
        cidrs: flags.cidr,
        dns: flags.dns,
      });
      const replay = diffFlows(
        observed,
        {
          policies: proposal.policies.map((p) => p.policy),
          namespaces: input.ids.namespaces(),
          nodes: input.ids.nodes(),
        },
        'latest',
      );
      const agrees = replay.summary.newlyAllowed === 0 && replay.summary.newlyDenied === 0;
      const s = replay.summary;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify(adviseJson(proposal, replay, { source: input.source, unknownLabels: observed.unknown }), null, 2)}\n`,
        );
      } else {
        const header =
          `flowtrail advise: ${s.flows} flows in ${s.records} records from ${input.source}\n` +
          'Review the rules marked REVIEW before applying.';
        const yaml = renderYaml(proposal, header);
        if (flags.out) {
          mkdirSync(flags.out, { recursive: true });
          for (const [ns, text] of yaml) {
            const file = join(flags.out, `${ns}.yaml`);
            writeFileSync(file, text);
            process.stdout.write(
              `${file}: ${proposal.policies.filter((p) => p.policy.namespace === ns).length} policies\n`,
            );
          }
        } else {
          process.stdout.write([...yaml.values()].join('---\n'));
        }
      }
      const say = (text: string) =>
        flags.json ? undefined : (flags.out ? process.stdout : process.stderr).write(text);
      for (const n of proposal.notes) process.stderr.write(`flowtrail advise: note: ${n}\n`);
      for (const [why, n] of Object.entries(s.skipped))
        process.stderr.write(`flowtrail advise: ${n} records skipped: ${why}\n`);
      for (const u of observed.unknown) process.stderr.write(`flowtrail advise: ${u}\n`);
      if (input.badLines > 0)
        process.stderr.write(
          `flowtrail advise: ${input.badLines} lines are not flow records, skipped\n`,
        );
      if (agrees) {
        say(
          pc.green(
            `replay: the proposal reproduces all ${s.flows} flows (${s.records} records)${s.superseded > 0 ? `; ${s.superseded} earlier records were superseded by later verdicts` : ''}\n`,
          ),
        );
      } else {
        say(
          pc.red(
            `replay: ${s.newlyDenied} records would be denied and ${s.newlyAllowed} allowed against what was observed:\n`,
          ),
        );
        say(`${diffTable(replay)}\n`);
      }
      process.exitCode = agrees ? 0 : 1;
    });
}
