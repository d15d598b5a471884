import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('query'));
}
