import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('capture'));
}
