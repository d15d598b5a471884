// Replaces the generated part of a docs section: the text between
// `<!-- NAME -->` and `<!-- /NAME -->` in the file. Prose around the markers
// is written by hand and kept; a missing pair of markers is an error, not an
// append, so figures never land somewhere nobody reads.
import { readFileSync, writeFileSync } from 'node:fs';

export function replaceSection(file, name, body) {
  const text = readFileSync(file, 'utf8');
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`${file}: no "${open}" … "${close}" markers`);
  writeFileSync(file, `${text.slice(0, a + open.length)}\n${body}\n${text.slice(b)}`);
}
