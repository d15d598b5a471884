// Writes docs/queries.md from the query pack (src/queries/docs.ts), bundled
// on the fly with esbuild so that no full build is needed.
import { writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const out = await build({
  entryPoints: [new URL('../src/queries/docs.ts', import.meta.url).pathname],
  bundle: true,
  platform: 'node',
  format: 'esm',
  write: false,
});
const code = out.outputFiles[0].text;
const { renderQueriesMarkdown } = await import(
  `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`
);
writeFileSync(new URL('../docs/queries.md', import.meta.url), renderQueriesMarkdown());
process.stdout.write('wrote docs/queries.md\n');
