import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerEstimate(program: Command): void {
  program
    .command('estimate')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('estimate'));
}
