import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAdvise } from './cli/advise.js';
import { registerAgent } from './cli/agent.js';
import { registerCapture } from './cli/capture.js';
import { registerDemo } from './cli/demo.js';
import { registerDoctor } from './cli/doctor.js';
import { registerEstimate } from './cli/estimate.js';
import { registerPolicy } from './cli/policy.js';
import { registerQuery } from './cli/query.js';
import { registerReport } from './cli/report.js';
import { registerSetup } from './cli/setup.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('flowtrail')
    .description(
      'Kubernetes network flow logs from conntrack and NFLOG, shipped to Amazon CloudWatch',
    )
    .version(pkg.version, '-V, --version')
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

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; usage errors exit 2 like the config errors.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  throw err;
}
