/**
 * A ring layout for the workload map, computed when the page is written:
 * every node on one circle, grouped by namespace (a gap between groups),
 * labels radiating outward, edges bundled through their groups' centres.
 * This is the radial "hierarchical edge bundling" drawing: with one slot of
 * about a line's height per node, 200 workloads fit on a ring whose labels
 * never overlap, which a force layout cannot promise. Deterministic: the
 * same groups in the same order give the same drawing. Pure geometry.
 */

export interface RingGroupInput {
  readonly name: string;
  readonly nodes: readonly { readonly id: string; readonly label: string }[];
}

export interface RingOptions {
  /** Label font size, user units. */
  readonly fontSize: number;
  /** Ring length per node (and per gap between groups), user units. */
  readonly slot: number;
  readonly minRadius: number;
  /** Longer labels are cut with an ellipsis (the full text goes in the title). */
  readonly maxLabelChars: number;
}

export const RING_DEFAULTS: RingOptions = {
  fontSize: 11,
  slot: 14,
  minRadius: 110,
  maxLabelChars: 32,
};

/** Average advance of a character in a sans-serif UI font, as a share of the font size. */
const CHAR_WIDTH = 0.62;

export interface PlacedNode {
  readonly id: string;
  /** Radians clockwise from 12 o'clock. */
  readonly angle: number;
  readonly x: number;
  readonly y: number;
  /** The label as drawn (cut to maxLabelChars). */
  readonly label: string;
  readonly labelX: number;
  readonly labelY: number;
  /** Degrees. */
  readonly labelRotate: number;
  readonly labelAnchor: 'start' | 'end';
}

export interface PlacedGroup {
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly mid: number;
}

export interface Ring {
  readonly radius: number;
  readonly nodes: ReadonlyMap<string, PlacedNode>;
  readonly groups: readonly PlacedGroup[];
  /** Half the side of the square that holds the ring and its labels (estimated). */
  readonly extent: number;
  readonly options: RingOptions;
}

export const round = (v: number): number => Math.round(v * 10) / 10;

/** The point at `angle` (clockwise from 12 o'clock) and radius `r`. */
export function polar(angle: number, r: number): [number, number] {
  return [round(r * Math.sin(angle)), round(-r * Math.cos(angle))];
}

export function cutLabel(label: string, max: number): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

/** Estimated width of a label in user units. */
export function labelWidth(text: string, fontSize: number): number {
  return text.length * fontSize * CHAR_WIDTH;
}

/** Where the node circles sit relative to the ring radius, and where labels start. */
export const NODE_RADIUS = 4.5;
const LABEL_GAP = NODE_RADIUS + 5;

export function ringLayout(
  groups: readonly RingGroupInput[],
  o: RingOptions = RING_DEFAULTS,
): Ring {
  const nodeCount = groups.reduce((n, g) => n + g.nodes.length, 0);
  const gaps = groups.length > 1 ? groups.length : 0;
  const slots = Math.max(1, nodeCount + gaps);
  const radius = round(Math.max(o.minRadius, (slots * o.slot) / (2 * Math.PI)));
  const step = (2 * Math.PI) / slots;
  const nodes = new Map<string, PlacedNode>();
  const placed: PlacedGroup[] = [];
  let longest = 0;
  // Half a gap before the first group, so the gaps sit symmetrically.
  let cursor = gaps > 0 ? step / 2 : 0;
  for (const g of groups) {
    const start = cursor;
    for (const n of g.nodes) {
      const angle = cursor + step / 2;
      cursor += step;
      const [x, y] = polar(angle, radius);
      const [labelX, labelY] = polar(angle, radius + LABEL_GAP);
      const deg = (angle * 180) / Math.PI;
      // Right half reads outward from the ring; left half is turned so it is not upside down.
      const right = deg < 180;
      const label = cutLabel(n.label, o.maxLabelChars);
      longest = Math.max(longest, labelWidth(label, o.fontSize));
      nodes.set(n.id, {
        id: n.id,
        angle,
        x,
        y,
        label,
        labelX,
        labelY,
        labelRotate: round(right ? deg - 90 : deg + 90),
        labelAnchor: right ? 'start' : 'end',
      });
    }
    placed.push({ name: g.name, start, end: cursor, mid: (start + cursor) / 2 });
    if (gaps > 0) cursor += step;
  }
  return {
    radius,
    nodes,
    groups: placed,
    extent: Math.ceil(radius + LABEL_GAP + longest + o.fontSize),
    options: o,
  };
}

/** Radii of the band that marks each group, just inside the node circles. */
export function groupBand(ring: Ring): { inner: number; outer: number } {
  return { inner: ring.radius - NODE_RADIUS - 9, outer: ring.radius - NODE_RADIUS - 3 };
}

/** An annulus sector from `start` to `end` (radians) between two radii, as path data. */
export function arcPath(start: number, end: number, inner: number, outer: number): string {
  // A whole circle cannot be one arc: stop just short of it.
  const e = end - start >= 2 * Math.PI ? start + 2 * Math.PI - 1e-3 : end;
  const large = e - start > Math.PI ? 1 : 0;
  const [x0, y0] = polar(start, outer);
  const [x1, y1] = polar(e, outer);
  const [x2, y2] = polar(e, inner);
  const [x3, y3] = polar(start, inner);
  return `M${x0} ${y0}A${outer} ${outer} 0 ${large} 1 ${x1} ${y1}L${x2} ${y2}A${inner} ${inner} 0 ${large} 0 ${x3} ${y3}Z`;
}

/**
 * An edge from one node to another, bundled: a cubic curve whose control
 * points sit on the line to each end's group centre, so edges between the
 * same two groups run together. `pull` (0–1) sets how deep they dip toward
 * the centre; two edges of one pair with different pulls stay apart.
 * A node's edge to itself is a small loop inside the ring.
 */
export function edgePath(ring: Ring, src: string, dst: string, pull: number): string {
  const a = ring.nodes.get(src)!;
  const b = ring.nodes.get(dst)!;
  const r0 = groupBand(ring).inner - 1;
  if (src === dst) {
    const d = (2 * Math.PI) / Math.max(ring.nodes.size * 4, 24);
    const [x0, y0] = polar(a.angle - d, r0);
    const [x1, y1] = polar(a.angle - 3 * d, r0 * 0.8);
    const [x2, y2] = polar(a.angle + 3 * d, r0 * 0.8);
    const [x3, y3] = polar(a.angle + d, r0);
    return `M${x0} ${y0}C${x1} ${y1} ${x2} ${y2} ${x3} ${y3}`;
  }
  const ga = groupOf(ring, a.angle);
  const gb = groupOf(ring, b.angle);
  const same = ga === gb;
  // Within a group the curve dips by how far apart the two nodes are; across groups it bundles.
  const ca = same ? a.angle : ga.mid;
  const cb = same ? b.angle : gb.mid;
  const depth = same ? r0 * (1 - Math.min(0.8, Math.abs(a.angle - b.angle))) : r0 * (1 - pull);
  const [x0, y0] = polar(a.angle, r0);
  const [x1, y1] = polar(ca, depth);
  const [x2, y2] = polar(cb, depth);
  const [x3, y3] = polar(b.angle, r0);
  return `M${x0} ${y0}C${x1} ${y1} ${x2} ${y2} ${x3} ${y3}`;
}

function groupOf(ring: Ring, angle: number): PlacedGroup {
  return ring.groups.find((g) => angle >= g.start && angle < g.end) ?? ring.groups[0]!;
}
