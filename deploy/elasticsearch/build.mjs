// Bundles the subscription function into deploy/elasticsearch/dist/index.mjs
// (handler: index.handler, runtime nodejs24.x) and zips it as function.zip
// when `zip` is installed. Run: npm run build:es-function
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, 'dist');
await build({
  entryPoints: [join(here, 'src/handler.ts')],
  outfile: join(outdir, 'index.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'info',
});
try {
  execFileSync('zip', ['-qj', join(outdir, 'function.zip'), join(outdir, 'index.mjs')]);
  console.log(`wrote ${join(outdir, 'function.zip')}`);
} catch {
  console.log('zip not installed: upload dist/index.mjs (zip it yourself)');
}
