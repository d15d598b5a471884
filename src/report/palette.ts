/** Ten colours that stay apart for most readers (Tableau 10), handed out in order. */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#b07aa1',
  '#76b7b2',
  '#edc948',
  '#9c755f',
  '#ff9da7',
  '#e15759',
  '#8cd17d',
] as const;

export const colourAt = (i: number): string => PALETTE[i % PALETTE.length]!;
