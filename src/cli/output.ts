/**
 * What every command's output shares: a quiet end when the reader of a pipe
 * goes away (`flowtrail report | head`), colour only where a person reads
 * it, the tables, and CSV cells.
 */
import Table from 'cli-table3';
import pc from 'picocolors';

type Colors = ReturnType<typeof pc.createColors>;

// --- closed pipes ------------------------------------------------------------

/** Exit status when the reader of stdout went away: the output was wanted no further. */
export const CLOSED_PIPE_EXIT = 0;

let onClosed: () => void = () => process.exit(CLOSED_PIPE_EXIT);

/**
 * What to do when stdout or stderr is a pipe whose reader has gone (EPIPE).
 * Default: exit at once with CLOSED_PIPE_EXIT. A command with something to
 * finish first (the agent's last flush, the demo's clean-up) sets its own.
 */
export function onClosedPipe(handler: () => void): void {
  onClosed = handler;
}

/**
 * Installs the EPIPE handling once, at start-up. Node ignores SIGPIPE and
 * reports a closed pipe as an `error` event on the stream, which without a
 * listener is an uncaught exception with a stack trace. Other stream errors
 * stay fatal, as before.
 */
export function handleClosedPipes(): void {
  let closed = false;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      if (closed) return;
      closed = true;
      onClosed();
    });
  }
}

// --- colour ------------------------------------------------------------------

export interface ColorInputs {
  /** commander's `--no-color`: false when given. */
  flag: boolean | undefined;
  env: NodeJS.ProcessEnv;
  /** Whether the output stream is a terminal. */
  isTTY: boolean;
}

/**
 * Colour on a terminal only. `--no-color` and NO_COLOR (any non-empty value,
 * no-color.org) always win; FORCE_COLOR (anything but `0`/`false`) turns it
 * on for a pipe or a file; TERM=dumb turns it off on a terminal.
 */
export function colorEnabled(o: ColorInputs): boolean {
  if (o.flag === false) return false;
  if (o.env.NO_COLOR !== undefined && o.env.NO_COLOR !== '') return false;
  const force = o.env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  return o.isTTY && o.env.TERM !== 'dumb';
}

export interface Style {
  readonly color: boolean;
  /** picocolors with colour on or off (off: every function returns its input). */
  readonly c: Colors;
  /** A cli-table3 table with these column heads, coloured only when `color`. */
  table(head: readonly string[]): Table.Table;
}

export function createStyle(color: boolean): Style {
  const c = pc.createColors(color);
  return {
    color,
    c,
    // cli-table3 colours heads and borders through @colors/colors, which makes
    // its own terminal guess: its styles stay empty and the heads are coloured
    // here, so this one decision holds for the tables too.
    table: (head) =>
      new Table({ head: head.map((h) => c.cyan(h)), style: { head: [], border: [] } }),
  };
}

/** The style for what a command writes to stdout, given its `--no-color` flag. */
export function stdoutStyle(flags: { color?: boolean }): Style {
  return createStyle(
    colorEnabled({ flag: flags.color, env: process.env, isTTY: process.stdout.isTTY === true }),
  );
}

// --- CSV -----------------------------------------------------------------------

/** One RFC 4180 cell: quoted when it holds a quote, a comma or a line break. */
export function csvCell(v: unknown): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV line, with its newline. */
export function csvLine(cells: readonly unknown[]): string {
  return `${cells.map(csvCell).join(',')}\n`;
}
