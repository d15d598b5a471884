import type { Command } from 'commander';
import { stringify } from 'yaml';
import { type RawConfig, setOverrides } from '../config.js';
import { ConfigError, FlowtrailError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { exitInvalidConfig, loadConfigOrExit, overridesOrExit } from './load-config.js';
import { collect, configFile, configOption, exitCodes, hiddenAlias } from './options.js';
import { onClosedPipe } from './output.js';

interface AgentFlags {
  config?: string;
  cluster?: string;
  node?: string;
  set: string[];
  file?: string;
  stdout?: boolean;
  flushInterval?: string;
  printConfig?: boolean;
}

/** Flags are the last layer over file and environment. */
export function flagOverrides(flags: AgentFlags): RawConfig {
  const assignments = [...flags.set];
  if (flags.cluster !== undefined) assignments.push(`clusterName=${flags.cluster}`);
  if (flags.node !== undefined) assignments.push(`nodeName=${flags.node}`);
  if (flags.file !== undefined) assignments.push(`sinks.file.path=${flags.file}`);
  if (flags.stdout) assignments.push('sinks.stdout=true');
  if (flags.flushInterval !== undefined) {
    assignments.push(`flowLogs.flushIntervalSeconds=${flags.flushInterval}`);
  }
  return setOverrides(assignments);
}

export function registerAgent(program: Command): void {
  const cmd = program
    .command('agent')
    .description('run the per-node collector: conntrack + NFLOG → flow records → sinks')
    .addOption(configOption('YAML config file (every key: docs/configuration.md)'))
    .option('--cluster <name>', 'cluster name (overrides clusterName)')
    .option('--node <name>', 'node name (overrides nodeName)')
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
        '→ FLOWTRAIL_FLOW_LOGS_FLUSH_INTERVAL_SECONDS. Every key, its default and its\n' +
        'variable: docs/configuration.md.',
    );
  hiddenAlias(cmd, '--cluster-name <name>', 'cluster');
  hiddenAlias(cmd, '--node-name <name>', 'node');
  exitCodes(cmd, {
    0: 'stopped cleanly (SIGTERM, SIGINT, or the reader of --stdout went away)',
    1: 'runtime failure (logged as JSON on stderr)',
    2: 'bad configuration or usage',
  });
  cmd.action(async (flags: AgentFlags) => {
    const overrides = overridesOrExit(() => flagOverrides(flags));
    const config = loadConfigOrExit(configFile(flags), overrides);
    if (flags.printConfig) {
      process.stdout.write(stringify(config));
      return;
    }
    const logger = createLogger({ level: config.log.level });
    const { runAgent } = await import('../agent/run.js');
    // A closed stdout (`--stdout | head`) stops the agent like SIGTERM: the
    // partial interval still reaches the other sinks and the spool.
    const stopSignal = new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
      onClosedPipe(() => resolve());
    });
    try {
      await runAgent(config, { logger, stopSignal });
    } catch (err) {
      // What only the agent can check (the region with the environment's variables): exit 2 too.
      if (err instanceof ConfigError) exitInvalidConfig(err, configFile(flags));
      if (err instanceof FlowtrailError) {
        logger.fatal({ code: err.code, ...err.context }, err.message);
      } else {
        logger.fatal({ err }, 'agent failed');
      }
      process.exit(1);
    }
  });
}
