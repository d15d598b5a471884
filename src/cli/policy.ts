/**
 * `flowtrail policy test --policies DIR`: what-if. Every recorded flow is
 * judged by the given NetworkPolicies (as if they were the cluster's only
 * ones), and the flows whose verdict would change are listed per namespace
 * and workload: newly denied (allowed today) and newly allowed (denied
 * today), with the policies that decide. Before anyone applies them.
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import { diffFlows, type PolicyDiff, whatIf } from '../advise/diff.js';
import { observe } from '../advise/observe.js';
import { readPolicies } from '../advise/policy-files.js';
import { csvCell } from '../util/csv.js';
import { diffTable } from './advise.js';
import { addFlowInputOptions, type FlowInputFlags, loadFlowInput } from './flow-input.js';

interface PolicyTestFlags extends FlowInputFlags {
  policies: string;
  all?: boolean;
  json?: boolean;
  csv?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail policy test: ${message}\n`);
  process.exit(2);
}

const CSV_COLUMNS = [
  'change',
  'source',
  'destination',
  'srcNamespace',
  'dstNamespace',
  'port',
  'protocol',
  'observed',
  'proposed',
  'records',
  'connections',
  'packets',
  'bytes',
  'policies',
] as const;

function byNamespace(diff: PolicyDiff): string {
  const rows = new Map<string, { workloads: Set<string>; denied: number; allowed: number }>();
  for (const r of diff.rows) {
    if (r.change === 'unchanged') continue;
    // The namespace whose workload the change is about: the destination's for ingress, else the source's.
    const ns = r.dstNamespace !== '-' ? r.dstNamespace : r.srcNamespace;
    const row = rows.get(ns) ?? { workloads: new Set(), denied: 0, allowed: 0 };
    row.workloads.add(r.dstNamespace !== '-' ? r.dst : r.src);
    if (r.change === 'newly-denied') row.denied += r.records;
    else row.allowed += r.records;
    rows.set(ns, row);
  }
  const t = new Table({
    head: ['namespace', 'workloads', 'records newly denied', 'records newly allowed'],
    style: { head: ['cyan'] },
  });
  for (const [ns, r] of [...rows].sort(([a], [b]) => (a < b ? -1 : 1)))
    t.push([ns, [...r.workloads].sort().join(' '), r.denied, r.allowed]);
  return t.toString();
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('NetworkPolicy tools');
  addFlowInputOptions(
    policy
      .command('test')
      .description(
        'what-if: which recorded flows a set of NetworkPolicies would deny or newly allow',
      ),
  )
    .requiredOption(
      '--policies <dir>',
      'a directory of NetworkPolicy YAML/JSON files (or one file)',
    )
    .option('--all', 'list unchanged flows too')
    .option('--json', 'the whole diff as JSON: rows and summary')
    .option('--csv', `CSV rows: ${CSV_COLUMNS.join(',')}`)
    .addHelpText(
      'after',
      '\nThe policies are judged as if they were the only ones in the cluster; labels come from the\n' +
        'records (flowLogs.includeLabels) or from --endpoints / --kubernetes.\n' +
        'Exit codes: 0 no recorded flow would change verdict, 1 some would (listed), 2 bad input.',
    )
    .action(async (flags: PolicyTestFlags) => {
      let set: ReturnType<typeof readPolicies>;
      try {
        set = readPolicies(flags.policies);
      } catch (err) {
        fail((err as Error).message);
      }
      const input = await loadFlowInput(flags, fail);
      if (input.records.length === 0) fail(`no records in the window from ${input.source}`);
      const observed = observe(input.records, input.ids);
      if (observed.unknown.length > 0 && observed.records.length === 0) fail(observed.unknown[0]!);
      const diff = diffFlows(
        observed,
        { policies: set.policies, namespaces: input.ids.namespaces(), nodes: input.ids.nodes() },
        'record',
      );
      const s = diff.summary;
      const shown = flags.all ? diff.rows : diff.rows.filter((r) => r.change !== 'unchanged');
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              // title, newlyDenied, newlyAllowed: what `report --html --diff FILE` reads.
              ...whatIf(diff, `flowtrail policy test --policies ${flags.policies}`),
              policies: set.policies.length,
              source: input.source,
              ...diff,
            },
            null,
            2,
          )}\n`,
        );
      } else if (flags.csv) {
        process.stdout.write(`${CSV_COLUMNS.join(',')}\n`);
        for (const r of shown)
          process.stdout.write(
            `${[r.change, r.src, r.dst, r.srcNamespace, r.dstNamespace, r.port, r.protocol, r.observed, r.proposed, r.records, r.connections, r.packets, r.bytes, r.policies.join(' ')].map(csvCell).join(',')}\n`,
          );
      } else {
        process.stdout.write(
          `${pc.bold(`${set.policies.length} policies`)} from ${set.files} file(s) against ${s.flows} flows in ${s.records} records from ${input.source}\n`,
        );
        process.stdout.write(
          `unchanged ${s.unchanged}, ${pc.red(`newly denied ${s.newlyDenied}`)}, ${pc.yellow(`newly allowed ${s.newlyAllowed}`)} (records)\n`,
        );
        if (s.newlyDenied + s.newlyAllowed > 0) process.stdout.write(`\n${byNamespace(diff)}\n\n`);
        if (shown.length > 0) process.stdout.write(`${diffTable(diff, shown)}\n`);
      }
      for (const [why, n] of Object.entries(s.skipped))
        process.stderr.write(`flowtrail policy test: ${n} records skipped: ${why}\n`);
      for (const u of observed.unknown) process.stderr.write(`flowtrail policy test: ${u}\n`);
      process.exitCode = s.newlyDenied + s.newlyAllowed > 0 ? 1 : 0;
    });
}
