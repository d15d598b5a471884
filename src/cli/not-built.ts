/** Subcommands listed in --help before they exist say so and exit 2. */
export function notBuiltYet(name: string): never {
  process.stderr.write(`flowtrail ${name}: not built yet in this version\n`);
  process.exit(2);
}
