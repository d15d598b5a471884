import type { Command } from 'commander';
import { setOverrides } from '../config.js';
import { loadConfigOrExit, overridesOrExit } from './load-config.js';
import { collect, configFile, configOption, exitCodes } from './options.js';

interface DoctorFlags {
  config?: string;
  set: string[];
  json?: boolean;
  writeTest?: boolean;
}

export function registerDoctor(program: Command): void {
  const cmd = program
    .command('doctor')
    .description(
      'check everything the agent needs on this node: kernel, policy rules, AWS, Kubernetes, spool',
    )
    .addOption(configOption('the agent config to check against'))
    .option('--set <key=value>', 'override a config key (repeatable)', collect, [])
    .option('--write-test', 'also put one harmless event (to <node>_Events) and one metric datum')
    .option('--json', 'print {ok, checks:[{id, title, status, found, fix}]}')
    .addHelpText(
      'after',
      '\nRun it where the agent runs (root or CAP_NET_ADMIN, the node network namespace).',
    );
  exitCodes(cmd, {
    0: 'every required check passed',
    1: 'a check failed (each failure names its fix)',
    2: 'bad configuration or usage',
  });
  cmd.action(async (flags: DoctorFlags) => {
    const overrides = overridesOrExit(() => setOverrides(flags.set));
    const config = loadConfigOrExit(configFile(flags), overrides);
    // Loaded here, not at start-up: every command (the agent too) loads the CLI.
    const { formatReport, runDoctor } = await import('../doctor/run.js');
    const report = await runDoctor(config, { writeTest: flags.writeTest === true });
    process.stdout.write(
      flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report),
    );
    process.exit(report.ok ? 0 : 1);
  });
}
