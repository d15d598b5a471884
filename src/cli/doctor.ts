import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('doctor'));
}
