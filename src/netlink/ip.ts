/** Address text from raw bytes: dotted quad, and RFC 5952 IPv6 (longest zero run as ::, lowercase). */

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function formatIPv6(b: Uint8Array, o: number): string {
  const words: number[] = new Array(8);
  for (let i = 0; i < 8; i++) words[i] = (b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!;
  // IPv4-mapped ::ffff:a.b.c.d keeps its dotted tail (RFC 5952 section 5).
  if (
    words[0] === 0 &&
    words[1] === 0 &&
    words[2] === 0 &&
    words[3] === 0 &&
    words[4] === 0 &&
    words[5] === 0xffff
  ) {
    return `::ffff:${b[o + 12]}.${b[o + 13]}.${b[o + 14]}.${b[o + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // A single zero word is not shortened.
  if (bestLen < 2) return words.map((w) => w.toString(16)).join(':');
  const head = words
    .slice(0, bestStart)
    .map((w) => w.toString(16))
    .join(':');
  const tail = words
    .slice(bestStart + bestLen)
    .map((w) => w.toString(16))
    .join(':');
  return `${head}::${tail}`;
}
