import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DemoError, runDemo } from '../demo/run.js';
import { EXIT_USAGE, exitCodes, hiddenAlias } from './options.js';
import { onClosedPipe, stdoutStyle } from './output.js';

interface DemoFlags {
  duration: string;
  flushInterval: string;
  keep?: boolean;
  cloudwatch: boolean;
  region?: string;
  workDir: string;
  json?: boolean;
  dataplane: string;
}

function positive(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(
      `flowtrail demo: --${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}\n`,
    );
    process.exit(EXIT_USAGE);
  }
  return n;
}

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description(
      'run the whole path on a simulated node: the stars app, policies, the agent, CloudWatch (root)',
    )
    .option(
      '--duration <seconds>',
      'how long traffic runs (a third under default deny, the rest with allow policies)',
      '45',
    )
    .option('--flush-interval <seconds>', 'the agent flush interval', '5')
    .option('--keep', 'keep running after the scenario until Ctrl-C')
    .option('--no-cloudwatch', 'write records to a local file only, no CloudWatch emulator')
    .option(
      '--region <region>',
      'ship to real CloudWatch in this region (credentials from the default AWS chain)',
    )
    .option('--work-dir <dir>', 'where config, spool and the record file go', '.flowtrail-demo')
    .option('--json', 'print the result as one JSON object instead of tables')
    .option(
      '--dataplane <name>',
      'where policy drops: iptables (NFLOG rules, the Calico way) or ebpf (TC programs that log nothing, the VPC CNI way: seen through kernel drop events)',
      'iptables',
    )
    .addHelpText(
      'after',
      '\nBy default the demo starts a local CloudWatch emulator (moto_server) and removes\neverything it made (namespaces, iptables rules, processes) at the end, on Ctrl-C and on error.',
    );
  hiddenAlias(cmd, '--flush <seconds>', 'flushInterval');
  exitCodes(cmd, {
    0: 'the scenario ran (also when stopped by Ctrl-C or a closed pipe, after cleaning up)',
    1: 'the demo failed (the message says where)',
    2: 'not root, a missing tool, or bad usage',
  });
  cmd.action(async (flags: DemoFlags, self: Command) => {
    const durationSeconds = positive('duration', flags.duration, 5, 86_400);
    const flushSeconds = positive('flush-interval', flags.flushInterval, 1, 300);
    if (flags.dataplane !== 'iptables' && flags.dataplane !== 'ebpf') {
      process.stderr.write(
        `flowtrail demo: --dataplane: expected iptables or ebpf, got ${JSON.stringify(flags.dataplane)}\n`,
      );
      process.exit(2);
    }
    const style = stdoutStyle(self.optsWithGlobals());
    // A closed stdout ends the demo as Ctrl-C does: cleaned up, then exit.
    const closed = new AbortController();
    onClosedPipe(() => closed.abort());
    try {
      const result = await runDemo({
        durationSeconds,
        flushSeconds,
        keep: flags.keep === true,
        cloudwatch: !flags.cloudwatch ? 'none' : flags.region ? 'aws' : 'emulator',
        ...(flags.region ? { region: flags.region } : {}),
        workDir: resolve(flags.workDir),
        json: flags.json === true,
        out: process.stdout,
        style,
        stop: closed.signal,
        dataplane: flags.dataplane,
      });
      if (!flags.json) {
        process.stdout.write(
          style.c.dim(
            `Cleaned up: the simulated node, its iptables rules and processes${result.source === 'cloudwatch' ? ' and the emulator' : ''} are gone.\n`,
          ),
        );
      }
    } catch (err) {
      if (err instanceof DemoError) {
        process.stderr.write(`flowtrail demo: ${err.message}\n`);
        process.exit(EXIT_USAGE);
      }
      process.stderr.write(`flowtrail demo failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    }
  });
}
