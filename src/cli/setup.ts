import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerSetup(program: Command): void {
  program
    .command('setup')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('setup'));
}
