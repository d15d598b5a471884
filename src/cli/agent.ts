import type { Command } from 'commander';
import { stringify } from 'yaml';
import { type Config, loadConfig, type RawConfig, setOverrides } from '../config.js';
import { ConfigError, FlowtrailError } from '../util/errors.js';
import { createLogger } from '../util/log.js';

interface AgentFlags {
  config?: string;
  clusterName?: string;
  nodeName?: string;
  set: string[];
  file?: string;
  stdout?: boolean;
  flushInterval?: string;
  printConfig?: boolean;
}

/** Commander option parser for repeatable flags (`--set a=1 --set b=2`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Flags are the last layer over file and environment. */
export function flagOverrides(flags: AgentFlags): RawConfig {
  const assignments = [...flags.set];
  if (flags.clusterName !== undefined) assignments.push(`clusterName=${flags.clusterName}`);
  if (flags.nodeName !== undefined) assignments.push(`nodeName=${flags.nodeName}`);
  if (flags.file !== undefined) assignments.push(`sinks.file.path=${flags.file}`);
  if (flags.stdout) assignments.push('sinks.stdout=true');
  if (flags.flushInterval !== undefined) {
    assignments.push(`flowLogs.flushIntervalSeconds=${flags.flushInterval}`);
  }
  return setOverrides(assignments);
}

/** Builds the flag layer, or exits 2 naming each bad `--set` (one a line). */
export function overridesOrExit(build: () => RawConfig): RawConfig {
  try {
    return build();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.issues) process.stderr.write(`flowtrail: ${line}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Loads the config or exits 2 with the problems, one a line, never a stack trace. */
export function loadConfigOrExit(file: string | undefined, overrides: RawConfig): Config {
  try {
    const { config, warnings } = loadConfig({ file, overrides });
    for (const w of warnings) process.stderr.write(`flowtrail: warning: ${w}\n`);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`flowtrail: invalid configuration${file ? ` (${file})` : ''}:\n`);
      for (const line of err.issues) process.stderr.write(`  ${line}\n`);
      process.exit(2);
    }
    throw err;
  }
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the per-node collector: conntrack + NFLOG → flow records → sinks')
    .option('-c, --config <file>', 'YAML config file (DESIGN.md "Contracts"); env FLOWTRAIL_CONFIG')
    .option('--cluster-name <name>', 'cluster name (overrides clusterName)')
    .option('--node-name <name>', 'node name (overrides nodeName)')
    .option('--file <path>', 'also write records to this file (sinks.file.path)')
    .option('--stdout', 'also write records to stdout (sinks.stdout)')
    .option('--flush-interval <seconds>', 'flush interval (flowLogs.flushIntervalSeconds)')
    .option(
      '--set <key=value>',
      'set any config key, e.g. --set nflog.ingressGroup=5 (repeatable)',
      collect,
      [],
    )
    .option('--print-config', 'print the effective configuration as YAML and exit')
    .addHelpText(
      'after',
      '\nPrecedence: config file < FLOWTRAIL_* environment variables < flags.\n' +
        'Every key has a variable named after its path, e.g. flowLogs.flushIntervalSeconds\n' +
        '→ FLOWTRAIL_FLOW_LOGS_FLUSH_INTERVAL_SECONDS. Exit codes: 0 stopped cleanly,\n' +
        '1 runtime failure, 2 bad configuration or usage.',
    )
    .action(async (flags: AgentFlags) => {
      const overrides = overridesOrExit(() => flagOverrides(flags));
      const config = loadConfigOrExit(flags.config ?? process.env.FLOWTRAIL_CONFIG, overrides);
      if (flags.printConfig) {
        process.stdout.write(stringify(config));
        return;
      }
      const logger = createLogger({ level: config.log.level });
      const { runAgent } = await import('../agent.js');
      try {
        await runAgent(config, { logger });
      } catch (err) {
        if (err instanceof FlowtrailError) {
          logger.fatal({ code: err.code, ...err.context }, err.message);
        } else {
          logger.fatal({ err }, 'agent failed');
        }
        process.exit(1);
      }
    });
}
