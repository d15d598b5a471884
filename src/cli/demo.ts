import type { Command } from 'commander';
import { notBuiltYet } from './not-built.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(() => notBuiltYet('demo'));
}
