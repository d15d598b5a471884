/** One CSV cell: quoted when it holds a comma, a quote or a newline (RFC 4180). */
export function csvCell(v: unknown): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
