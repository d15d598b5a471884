/**
 * The workload map as inline SVG: nodes on a ring grouped by namespace
 * (ring-layout.ts), allow and deny edges whose width is the traffic they
 * carried, by bytes or by flows (both widths are written; a class on the
 * page picks one), and the namespace × namespace matrix as a table. A
 * what-if diff marks the edges whose verdict it would change. Pure.
 */
import type { WhatIfDiff, WhatIfFlow } from './diff.js';
import {
  endpointNode,
  type FlowGraph,
  GROUP_EXTERNAL,
  GROUP_HOSTS,
  GROUP_NETSETS,
  type MapEdge,
  type NamespaceMatrix,
} from './graph.js';
import { esc } from './html-escape.js';
import { colourAt } from './palette.js';
import {
  arcPath,
  edgePath,
  groupBand,
  labelWidth,
  NODE_RADIUS,
  polar,
  type Ring,
  ringLayout,
  round,
} from './ring-layout.js';
import { formatBytes, formatCount, protoName } from './units.js';

const FIXED_COLOURS: Readonly<Record<string, string>> = {
  [GROUP_HOSTS]: '#57606a',
  [GROUP_NETSETS]: '#8c959f',
  [GROUP_EXTERNAL]: '#24292f',
};

/** Each group's colour: namespaces take the palette in order, the rest fixed greys. */
export function groupColours(g: FlowGraph): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  for (const group of g.groups) out.set(group.name, FIXED_COLOURS[group.name] ?? colourAt(i++));
  return out;
}

const MIN_WIDTH = 1;
const MAX_WIDTH = 8;

/** Stroke width for a value: area-like (square root), so one huge edge does not hide the rest. */
function width(v: number, max: number): number {
  return round(MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * Math.sqrt(max > 0 ? v / max : 0));
}

function portList(e: MapEdge): string {
  const shown = e.ports
    .slice(0, 5)
    .map(
      (p) =>
        `${p.port === '-' ? '' : `${p.port}/`}${protoName(p.proto)} (${formatCount(p.flows)} flows)`,
    );
  if (e.ports.length > 5) shown.push(`${e.ports.length - 5} more`);
  return shown.join(', ');
}

/** The key a diff flow and an edge share: both ends' node ids. */
function flowKey(f: WhatIfFlow, side: 'src' | 'dst'): string {
  const ns = side === 'src' ? f.srcNamespace : f.dstNamespace;
  const w = side === 'src' ? f.srcWorkload : f.dstWorkload;
  if (ns !== '-') return endpointNode('wep', ns, w).id;
  return ['pub', 'pvt', 'aws'].includes(w) ? `net:${w}` : `hep:${w}`;
}

export function whatIfKeys(diff: WhatIfDiff | undefined): {
  denied: Set<string>;
  allowed: Set<string>;
} {
  const key = (f: WhatIfFlow) => `${flowKey(f, 'src')}\n${flowKey(f, 'dst')}`;
  return {
    denied: new Set(diff?.newlyDenied.map(key) ?? []),
    allowed: new Set(diff?.newlyAllowed.map(key) ?? []),
  };
}

export interface MapSvgOptions {
  readonly diff?: WhatIfDiff | undefined;
}

export function mapSvg(g: FlowGraph, o: MapSvgOptions = {}): string {
  if (g.groups.length === 0)
    return '<svg class="chart" id="flow-map" role="img" aria-label="no flows" viewBox="0 0 720 60" xmlns="http://www.w3.org/2000/svg"><text x="360" y="35" text-anchor="middle" class="muted">no flows in range</text></svg>';
  const ring = ringLayout(g.groups.map((x) => ({ name: x.name, nodes: x.nodes })));
  const colours = groupColours(g);
  const maxBytes = Math.max(0, ...g.edges.map((e) => e.bytes));
  const maxFlows = Math.max(0, ...g.edges.map((e) => e.flows));
  const whatIf = whatIfKeys(o.diff);
  const edges = g.edges
    .map((e) => {
      const from = g.nodes.get(e.src)!;
      const to = g.nodes.get(e.dst)!;
      const wb = width(e.bytes, maxBytes);
      const wf = width(e.flows, maxFlows);
      const pair = `${e.src}\n${e.dst}`;
      const mark =
        e.action === 'allow' && whatIf.denied.has(pair)
          ? ' wi wi-deny'
          : e.action === 'deny' && whatIf.allowed.has(pair)
            ? ' wi wi-allow'
            : '';
      const verdict = e.action === 'allow' ? 'allowed' : 'denied';
      const title = `${from.label} (${from.group}) → ${to.label} (${to.group}): ${verdict}, ${formatCount(e.flows)} flows, ${formatBytes(e.bytes)}, ${formatCount(e.packets)} packets; ${portList(e)}`;
      return `<path class="e ${e.action}${mark}" d="${edgePath(ring, e.src, e.dst, e.action === 'allow' ? 0.7 : 0.55)}" data-src="${esc(e.src)}" data-dst="${esc(e.dst)}" data-bytes="${e.bytes}" data-flows="${e.flows}" data-packets="${e.packets}" stroke-width="${wb}" style="--wb:${wb}px;--wf:${wf}px" marker-end="url(#arrow-${e.action})"><title>${esc(title)}</title></path>`;
    })
    .join('\n');
  // A small map is not blown up to the page's width: at most a little over one pixel per unit.
  const maxWidth = Math.ceil(2 * ring.extent * 1.15);
  return `<svg class="chart map" id="flow-map" role="img" aria-label="workload map: ${g.nodes.size} nodes, ${g.edges.length} edges" viewBox="${-ring.extent} ${-ring.extent} ${2 * ring.extent} ${2 * ring.extent}" style="max-width:${maxWidth}px" xmlns="http://www.w3.org/2000/svg">
<defs>${marker('allow')}${marker('deny')}</defs>
<g class="edges">
${edges}
</g>
${groupsSvg(g, ring, colours)}
${nodesSvg(g, ring, colours)}
</svg>`;
}

function marker(action: 'allow' | 'deny'): string {
  return `<marker id="arrow-${action}" class="arrow ${action}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto"><path d="M0 1L10 5L0 9z"/></marker>`;
}

function groupsSvg(g: FlowGraph, ring: Ring, colours: Map<string, string>): string {
  const band = groupBand(ring);
  const fs = ring.options.fontSize;
  const labelR = band.inner - fs * 0.9;
  return `<g class="groups">${ring.groups
    .map((p) => {
      const group = g.groups.find((x) => x.name === p.name)!;
      const arc = `<path class="band" d="${arcPath(p.start, p.end, band.inner, band.outer)}" fill="${colours.get(p.name)}"><title>${esc(p.name)}: ${group.nodes.length} ${group.nodes.length === 1 ? 'node' : 'nodes'}</title></path>`;
      // The name along its arc when it fits there; the legend names every group anyway.
      const room = (p.end - p.start) * labelR;
      if (labelWidth(p.name, fs) > room * 0.9 && ring.groups.length > 1) return arc;
      const deg = (p.mid * 180) / Math.PI;
      const [x, y] = polar(p.mid, labelR);
      const rotate = ring.groups.length === 1 ? 0 : deg > 90 && deg < 270 ? deg - 180 : deg;
      return `${arc}<text class="group-label" x="${x}" y="${y}" dy="0.35em" text-anchor="middle" transform="rotate(${round(rotate)} ${x} ${y})" fill="${colours.get(p.name)}">${esc(p.name)}</text>`;
    })
    .join('')}</g>`;
}

function nodesSvg(g: FlowGraph, ring: Ring, colours: Map<string, string>): string {
  const rows: string[] = [];
  for (const group of g.groups) {
    for (const n of group.nodes) {
      const p = ring.nodes.get(n.id)!;
      const what =
        n.type === 'wep'
          ? `workload ${n.label} in namespace ${n.group}`
          : n.type === 'hep'
            ? `host ${n.label}`
            : n.type === 'ns'
              ? `network set ${n.label}`
              : `addresses ${n.label}`;
      const title = `${what}: sent ${formatBytes(n.sentBytes)}, received ${formatBytes(n.receivedBytes)} allowed; ${formatCount(n.deniedFlows)} denied flows`;
      rows.push(
        `<g class="node" data-id="${esc(n.id)}" data-group="${esc(n.group)}" data-label="${esc(n.label)}" tabindex="0"><title>${esc(title)}</title><circle cx="${p.x}" cy="${p.y}" r="${NODE_RADIUS}" fill="${colours.get(n.group)}"/><text x="${p.labelX}" y="${p.labelY}" dy="0.35em" text-anchor="${p.labelAnchor}" transform="rotate(${p.labelRotate} ${p.labelX} ${p.labelY})">${esc(p.label)}</text></g>`,
      );
    }
  }
  return `<g class="nodes" font-size="${ring.options.fontSize}">\n${rows.join('\n')}\n</g>`;
}

/** Groups with their colours and sizes, as HTML (every group, also those too small to name on the ring). */
export function mapLegend(g: FlowGraph): string {
  const colours = groupColours(g);
  const items = g.groups
    .map(
      (x) =>
        `<li><span class="swatch" style="background:${colours.get(x.name)}"></span>${esc(x.name)} <span class="muted">${x.nodes.length}</span></li>`,
    )
    .join('');
  return `<ul class="legend" id="map-legend">${items}<li><span class="line allow"></span>allowed</li><li><span class="line deny"></span>denied</li></ul>`;
}

/** Background strength of a cell: a log scale, so small and large flows both show. */
function shade(v: number, max: number): number {
  return max > 0 && v > 0 ? round(0.08 + (0.37 * Math.log1p(v)) / Math.log1p(max)) : 0;
}

/** The namespace × namespace matrix: rows send, columns receive; allowed and denied per cell. */
export function matrixTable(m: NamespaceMatrix): string {
  if (m.names.length === 0) return '<p class="muted">no flows in range</p>';
  const all = m.cells.flat();
  const maxB = Math.max(0, ...all.map((c) => c.allowBytes));
  const maxF = Math.max(0, ...all.map((c) => c.allowFlows));
  const head = m.names.map((n) => `<th scope="col"><span>${esc(n)}</span></th>`).join('');
  const rows = m.names
    .map((from, i) => {
      const cells = m.cells[i]!.map((c, j) => {
        const to = m.names[j]!;
        const empty = c.allowFlows + c.denyFlows + c.allowBytes + c.denyBytes === 0;
        if (empty) return '<td class="empty"></td>';
        const deny = c.denyFlows > 0 || c.denyPackets > 0;
        const title = `${from} → ${to}: allowed ${formatCount(c.allowFlows)} flows, ${formatBytes(c.allowBytes)}; denied ${formatCount(c.denyFlows)} flows, ${formatCount(c.denyPackets)} packets, ${formatBytes(c.denyBytes)}`;
        return `<td class="cell${deny ? ' has-deny' : ''}" data-from="${esc(from)}" data-to="${esc(to)}" data-allow-bytes="${c.allowBytes}" data-allow-flows="${c.allowFlows}" data-deny-bytes="${c.denyBytes}" data-deny-flows="${c.denyFlows}" style="--ab:${shade(c.allowBytes, maxB)};--af:${shade(c.allowFlows, maxF)}" title="${esc(title)}"><span class="by-bytes">${c.allowBytes + c.allowFlows > 0 ? formatBytes(c.allowBytes) : ''}${deny ? `<b>✕ ${formatBytes(c.denyBytes)}</b>` : ''}</span><span class="by-flows">${c.allowFlows > 0 ? formatCount(c.allowFlows) : ''}${deny ? `<b>✕ ${formatCount(c.denyFlows)}</b>` : ''}</span></td>`;
      }).join('');
      return `<tr><th scope="row">${esc(from)}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<div class="scroll"><table class="matrix" id="ns-matrix"><thead><tr><th class="corner">from ↓ to →</th>${head}</tr></thead><tbody>\n${rows}\n</tbody></table></div>`;
}
