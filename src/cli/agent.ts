import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('agent'));
}
