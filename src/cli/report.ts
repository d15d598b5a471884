import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('report'));
}
