/** The output rules every command shares (src/cli/output.ts): colour, and CSV cells. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { colorEnabled, createStyle, csvCell, csvLine } from '../../src/cli/output.js';

describe('colorEnabled', () => {
  const on = (flag: boolean | undefined, env: NodeJS.ProcessEnv, isTTY: boolean) =>
    colorEnabled({ flag, env, isTTY });

  it('colours a terminal only', () => {
    expect(on(undefined, {}, true)).toBe(true);
    expect(on(undefined, {}, false)).toBe(false);
    expect(on(undefined, { CI: 'true' }, false)).toBe(false);
    expect(on(undefined, { TERM: 'dumb' }, true)).toBe(false);
  });

  it('--no-color and NO_COLOR (non-empty) always win; FORCE_COLOR colours a pipe', () => {
    expect(on(false, { FORCE_COLOR: '1' }, true)).toBe(false);
    expect(on(undefined, { NO_COLOR: '1', FORCE_COLOR: '1' }, true)).toBe(false);
    expect(on(undefined, { NO_COLOR: '' }, true)).toBe(true);
    expect(on(undefined, { FORCE_COLOR: '1' }, false)).toBe(true);
    expect(on(undefined, { FORCE_COLOR: '' }, false)).toBe(true);
    expect(on(undefined, { FORCE_COLOR: '0' }, true)).toBe(false);
    expect(on(undefined, { FORCE_COLOR: 'false' }, true)).toBe(false);
  });

  it('a style without colour writes no ANSI code, tables included', () => {
    const plain = createStyle(false);
    const t = plain.table(['a', 'b']);
    t.push(['x', 'y']);
    expect(`${plain.c.bold('h')}${plain.c.dim('d')}${t.toString()}`).not.toContain('\x1b[');
    const coloured = createStyle(true);
    expect(coloured.table(['a']).toString()).toContain('\x1b[');
  });
});

/** RFC 4180 fields of one line (the reference the cells must round-trip through). */
function parseCsvLine(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') {
          cell += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else cell += line[i++];
      }
    } else {
      while (i < line.length && line[i] !== ',') cell += line[i++];
    }
    cells.push(cell);
    if (i >= line.length) return cells;
    i++; // the comma
  }
}

describe('csvCell', () => {
  it('quotes only what needs it', () => {
    expect(csvCell('client/api-*')).toBe('client/api-*');
    expect(csvCell(443)).toBe('443');
    expect(csvCell('Who connected, and why?')).toBe('"Who connected, and why?"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('a\nb')).toBe('"a\nb"');
    expect(csvCell('a\rb')).toBe('"a\rb"');
  });

  it('any cells survive a CSV line and an RFC 4180 reader', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 8 }),
        (cells) => {
          const line = csvLine(cells);
          expect(line.endsWith('\n')).toBe(true);
          expect(parseCsvLine(line.slice(0, -1))).toEqual(cells);
        },
      ),
      { numRuns: 500 },
    );
  });
});
