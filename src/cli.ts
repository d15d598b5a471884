import { Command, CommanderError } from 'commander';
import { registerAdvise } from './cli/advise.js';
import { registerAgent } from './cli/agent.js';
import { registerCapture } from './cli/capture.js';
import { registerDemo } from './cli/demo.js';
import { registerDoctor } from './cli/doctor.js';
import { registerEstimate } from './cli/estimate.js';
import { noColorOption } from './cli/options.js';
import { handleClosedPipes } from './cli/output.js';
import { registerPolicy } from './cli/policy.js';
import { registerQuery } from './cli/query.js';
import { registerReport } from './cli/report.js';
import { registerSetup } from './cli/setup.js';
import { buildInfo } from './util/build-info.js';

export function buildProgram(): Command {
  const program = new Command('flowtrail')
    .description(
      'Kubernetes network flow logs from conntrack and NFLOG, shipped to Amazon CloudWatch',
    )
    .version(buildInfo().version, '-V, --version')
    // Global: accepted before or after the command name, listed in every command's --help.
    .addOption(noColorOption())
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 2 a usage error (unknown option, bad value) in every command;\n' +
        'each command lists its own in `flowtrail COMMAND --help`.',
    )
    .showHelpAfterError()
    .exitOverride();
  registerAgent(program);
  registerCapture(program);
  registerSetup(program);
  registerReport(program);
  registerQuery(program);
  registerDemo(program);
  registerDoctor(program);
  registerEstimate(program);
  registerAdvise(program);
  registerPolicy(program);
  return program;
}

handleClosedPipes();
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; usage errors exit 2 like the config errors.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  throw err;
}
