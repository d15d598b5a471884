// Writes docs/configuration.md from the config schema (src/config-reference.ts),
// through the build in dist/ (npm run docs:config builds first).
import { writeFileSync } from 'node:fs';
import { renderConfigMarkdown } from '../dist/config-reference.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigMarkdown());
process.stdout.write('wrote docs/configuration.md\n');
