/**
 * The flag vocabulary every command shares: one name per idea (`--cluster`,
 * `--node`, `-c/--config`, `--log-group`, `--region`, `--endpoint`,
 * `--since`/`--until`, `--json`, `--no-color`), older names kept as hidden
 * aliases, and the exit codes at the end of every `--help`.
 */
import { type Command, Option } from 'commander';
import { defaultLogGroupName } from '../config.js';

/** Commander option parser for repeatable flags (`--set a=1 --set b=2`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * An older spelling of an option: still accepted, left out of `--help`, its
 * value stored under the current option's attribute (e.g. `--cluster-name`
 * → `cluster`).
 */
export function hiddenAlias(cmd: Command, flags: string, target: string): Command {
  const old = new Option(flags).hideHelp();
  cmd.addOption(old);
  cmd.on(`option:${old.name()}`, (value: unknown) => {
    cmd.setOptionValueWithSource(target, value, 'cli');
  });
  return cmd;
}

/** Usage errors (unknown flag, bad value, missing argument) exit 2 in every command. */
export const EXIT_USAGE = 2;

/** Appends the command's exit codes to its `--help`. */
export function exitCodes(cmd: Command, codes: Readonly<Record<number, string>>): Command {
  const lines = Object.entries(codes).map(([code, meaning]) => `  ${code}  ${meaning}`);
  return cmd.addHelpText('after', `\nExit codes:\n${lines.join('\n')}`);
}

export function configOption(what: string): Option {
  return new Option('-c, --config <file>', `${what}; env FLOWTRAIL_CONFIG`);
}

export function clusterOption(): Option {
  return new Option('--cluster <name>', 'cluster name (log group flowtrail-flowlogs-<cluster>)');
}

export function noColorOption(): Option {
  return new Option('--no-color', 'no ANSI colour (also NO_COLOR=1; colour only on a terminal)');
}

/** The agent config file a command reads: the flag, else FLOWTRAIL_CONFIG. */
export function configFile(flags: { config?: string }): string | undefined {
  return flags.config ?? (process.env.FLOWTRAIL_CONFIG || undefined);
}

/** Where the records live in CloudWatch, from flags first, then the agent config. */
export interface LogGroupSource {
  logGroup?: string;
  cluster?: string;
}

export function logGroupFor(
  flags: LogGroupSource,
  config?: { clusterName: string; sinks: { cloudwatch?: { logGroupName?: string } } },
): string | undefined {
  if (flags.logGroup) return flags.logGroup;
  if (flags.cluster) return defaultLogGroupName(flags.cluster);
  if (!config) return undefined;
  return config.sinks.cloudwatch?.logGroupName ?? defaultLogGroupName(config.clusterName);
}
