/**
 * `flowtrail report --html` pages opened in a real headless browser (Debian's
 * chromium, driven by puppeteer-core; no browser is downloaded). The pages
 * are written by the CLI from record files: the stars scenario made from its
 * definitions (src/demo/stars.ts: a default-deny phase, then the allow
 * policies), with a what-if diff, and a synthetic cluster of 200 workloads.
 * Checked: the map's nodes and edges are the scenario's, edge weights are the
 * records' (each flow once), the switches work, no console error, no request
 * beyond the page itself, and no label is cut off or drawn over another.
 * On a failure the test writes a screenshot to a temp dir and prints its path.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { TALKS } from '../../src/demo/stars.js';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import type { WhatIfDiff } from '../../src/report/diff.js';
import { CHROMIUM, skipBrowser } from '../harness/env.js';
import { starsRecords, syntheticCluster } from '../helpers/report-records.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const END = Math.floor(Date.now() / 1000 / 60) * 60 - 120;
const VIEWPORT = { width: 1280, height: 900 };

/** The stars workloads are named after their keys (frontend-5d9b7c8f4-h2x8k is Deployment frontend). */
const NS: Record<string, string> = {
  frontend: 'stars',
  backend: 'stars',
  client: 'client',
  'management-ui': 'management-ui',
};
const nodeId = (key: string) => (key === 'internet' ? 'net:pub' : `wep:${NS[key]}/${key}`);

const DIFF: WhatIfDiff = {
  title: 'flowtrail policy test --policies ./proposed',
  newlyDenied: [
    {
      srcNamespace: 'client',
      srcWorkload: 'client-6c8d7b5f9-*',
      dstNamespace: 'stars',
      dstWorkload: 'frontend',
      port: 80,
      proto: 'TCP',
      count: 240,
      policy: 'stars/frontend',
    },
  ],
  newlyAllowed: [
    {
      srcNamespace: 'client',
      srcWorkload: 'client',
      dstNamespace: 'stars',
      dstWorkload: 'backend',
      port: 6379,
      proto: 6,
      count: 360,
    },
  ],
};

interface Watched {
  page: Page;
  errors: string[];
  requests: string[];
}

async function open(browser: Browser, file: string): Promise<Watched> {
  const page = await browser.newPage();
  await page.setViewport(VIEWPORT);
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn')
      errors.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${String(e)}`));
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    requests.push(r.url());
    // Nothing but the page itself may load; anything else is refused (and counted above).
    if (r.url() === `file://${file}`) void r.continue();
    else void r.abort();
  });
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  return { page, errors, requests };
}

/** On a failure, a full-page screenshot in a temp dir (never the repo), its path printed. */
function screenshotOnFailure(w: () => Watched | undefined, name: string): void {
  onTestFailed(async () => {
    const page = w()?.page;
    if (!page) return;
    const path = join(mkdtempSync(join(tmpdir(), 'ft-report-shot-')), `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.error(`report-html-browser: screenshot of the failed page: ${path}`);
  });
}

function writeRecords(path: string, records: readonly FlowRecord[], variant: 24 | 27): void {
  writeFileSync(path, `${records.map((r) => encodeRecord(r, { variant })).join('\n')}\n`);
}

/** Runs `flowtrail report` (the CLI as users run it); rejects with its stderr on a non-zero exit. */
async function report(args: string[]): Promise<void> {
  try {
    await run(process.execPath, [CLI, 'report', ...args], { encoding: 'utf8' });
  } catch (err) {
    throw new Error(`flowtrail report ${args.join(' ')}: ${(err as { stderr?: string }).stderr}`);
  }
}

/** Labels' corners on screen (rotation included), in drawing order. */
async function labelBoxes(page: Page, selector: string) {
  return page.$$eval(selector, (els) =>
    els.map((el) => {
      const t = el as SVGTextElement;
      const b = t.getBBox();
      const m = t.getScreenCTM()!;
      const corners = [
        [b.x, b.y],
        [b.x + b.width, b.y],
        [b.x + b.width, b.y + b.height],
        [b.x, b.y + b.height],
      ].map(([x, y]) => {
        const p = new DOMPoint(x, y).matrixTransform(m);
        return [p.x + window.scrollX, p.y + window.scrollY] as [number, number];
      });
      const svg = t.ownerSVGElement!.getBoundingClientRect();
      return {
        text: t.textContent ?? '',
        corners,
        // Rendered size of the font: the user-space size times the screen scale.
        fontPx: Number.parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b),
        svg: {
          left: svg.left + window.scrollX,
          top: svg.top + window.scrollY,
          right: svg.right + window.scrollX,
          bottom: svg.bottom + window.scrollY,
        },
        pageWidth: document.documentElement.clientWidth,
      };
    }),
  );
}

type Box = Awaited<ReturnType<typeof labelBoxes>>[number];

/** Every corner inside the label's own svg (what is outside is cut off) and the page's width. */
function outside(b: Box): string | undefined {
  for (const [x, y] of b.corners) {
    if (
      x < b.svg.left - 0.5 ||
      x > b.svg.right + 0.5 ||
      y < b.svg.top - 0.5 ||
      y > b.svg.bottom + 0.5
    )
      return `${b.text} at (${x.toFixed(1)}, ${y.toFixed(1)}) is outside its svg ${JSON.stringify(b.svg)}`;
    if (x < 0 || x > b.pageWidth) return `${b.text} at x ${x.toFixed(1)} is off the page`;
  }
  return undefined;
}

/** Whether two convex quadrilaterals overlap (separating axis test). */
function overlap(a: [number, number][], b: [number, number][]): boolean {
  for (const poly of [a, b]) {
    for (let i = 0; i < poly.length; i++) {
      const [x1, y1] = poly[i]!;
      const [x2, y2] = poly[(i + 1) % poly.length]!;
      const nx = y2 - y1;
      const ny = x1 - x2;
      const project = (p: [number, number][]) => p.map(([x, y]) => x * nx + y * ny);
      const pa = project(a);
      const pb = project(b);
      // A hair of tolerance: glyph boxes of neighbours may touch.
      const eps = 0.5 * Math.hypot(nx, ny);
      if (Math.max(...pa) <= Math.min(...pb) + eps || Math.max(...pb) <= Math.min(...pa) + eps)
        return false;
    }
  }
  return true;
}

describe.skipIf(skipBrowser)('flowtrail report --html in a headless browser', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-report-browser-'));
  let browser: Browser;
  const stars = starsRecords(END);
  const big = syntheticCluster(200);

  beforeAll(async () => {
    writeRecords(join(dir, 'stars.log'), stars, 27);
    writeFileSync(join(dir, 'diff.json'), JSON.stringify(DIFF));
    writeRecords(join(dir, 'big.log'), big.records, 24);
    // The two pages are written while the browser starts.
    const pages = Promise.all([
      report([
        '--file',
        join(dir, 'stars.log'),
        '--since',
        '2h',
        '--html',
        join(dir, 'stars.html'),
        '--diff',
        join(dir, 'diff.json'),
        '--json',
      ]),
      report([
        '--file',
        join(dir, 'big.log'),
        '--since',
        '2026-01-01T00:00:00Z',
        '--until',
        '2026-01-01T00:01:00Z',
        '--html',
        join(dir, 'big.html'),
        '--json',
      ]),
    ]);
    // Settled here too, so a failed launch leaves no rejection unhandled.
    pages.catch(() => {});
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: join(dir, 'profile'),
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    await pages;
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('the stars scenario', () => {
    let w: Watched | undefined;
    beforeAll(async () => {
      w = await open(browser, join(dir, 'stars.html'));
    });

    it('renders with no console error and no request but the page', async () => {
      screenshotOnFailure(() => w, 'stars-render');
      const { page, errors, requests } = w!;
      expect(errors).toEqual([]);
      expect(requests).toEqual([`file://${join(dir, 'stars.html')}`]);
      const loaded = await page.evaluate(() => performance.getEntriesByType('resource').length);
      expect(loaded).toBe(0);
      expect(await page.$eval('h1', (h) => h.textContent)).toBe('flowtrail report');
    });

    it('maps exactly the stars workloads and talks: every talk denied (default deny), the allow-list allowed', async () => {
      screenshotOnFailure(() => w, 'stars-map');
      const { page } = w!;
      const nodes = await page.$$eval('#flow-map .node', (els) =>
        els.map((e) => (e as SVGElement).dataset.id),
      );
      const expectedNodes = new Set(TALKS.flatMap((t) => [nodeId(t.from), nodeId(t.to)]));
      expect(new Set(nodes)).toEqual(expectedNodes);
      expect(nodes).toHaveLength(expectedNodes.size);
      const edges = await page.$$eval('#flow-map .e', (els) =>
        els.map((e) => {
          const d = (e as SVGElement).dataset;
          return {
            key: `${d.src} → ${d.dst} ${e.classList.contains('allow') ? 'allow' : 'deny'}`,
            bytes: Number(d.bytes),
            packets: Number(d.packets),
            flows: Number(d.flows),
          };
        }),
      );
      const expectedEdges = [
        ...TALKS.filter((t) => t.allowedBy).map((t) => `${nodeId(t.from)} → ${nodeId(t.to)} allow`),
        ...TALKS.map((t) => `${nodeId(t.from)} → ${nodeId(t.to)} deny`),
      ];
      expect(edges.map((e) => e.key).sort()).toEqual(expectedEdges.sort());
      // Weights: an allowed pod-to-pod flow is in two records (both reporters); the edge counts it once.
      const of = (r: FlowRecord) => `${r.srcNameAggr}>${r.dstNameAggr}`;
      for (const t of TALKS) {
        const rs = stars.filter(
          (r) =>
            r.srcName.startsWith(`${t.from}-`) &&
            (t.to === 'internet' ? r.dstName === 'pub' : r.dstName.startsWith(`${t.to}-`)),
        );
        expect(new Set(rs.map(of)).size, `${t.from} → ${t.to}`).toBe(1);
        for (const action of ['allow', 'deny'] as const) {
          const counted = rs.filter(
            (r) => r.action === action && (action === 'deny' || r.reporter === 'src'),
          );
          const edge = edges.find((e) => e.key === `${nodeId(t.from)} → ${nodeId(t.to)} ${action}`);
          if (counted.length === 0) {
            expect(edge, `${t.from} → ${t.to} ${action}`).toBeUndefined();
            continue;
          }
          expect(edge, `${t.from} → ${t.to} ${action}`).toEqual({
            key: `${nodeId(t.from)} → ${nodeId(t.to)} ${action}`,
            bytes: counted.reduce((n, r) => n + r.bytesIn + r.bytesOut, 0),
            packets: counted.reduce((n, r) => n + r.packetsIn + r.packetsOut, 0),
            flows: counted.reduce((n, r) => n + r.numFlows, 0),
          });
        }
      }
    });

    it('switches edge weights between bytes and flows, hides denied edges, highlights a workload', async () => {
      screenshotOnFailure(() => w, 'stars-switches');
      const { page } = w!;
      const widths = () =>
        page.$$eval('#flow-map .e', (els) =>
          els.map((e) => ({
            css: getComputedStyle(e).strokeWidth,
            wb: (e as SVGElement).style.getPropertyValue('--wb'),
            wf: (e as SVGElement).style.getPropertyValue('--wf'),
          })),
        );
      for (const e of await widths()) expect(e.css).toBe(e.wb);
      await page.click('input[name="weight"][value="flows"]');
      const byFlows = await widths();
      for (const e of byFlows) expect(e.css).toBe(e.wf);
      // Not every flows width equals its bytes width, or the switch would prove nothing.
      expect(byFlows.some((e) => e.wf !== e.wb)).toBe(true);
      expect(await page.$eval('#ns-matrix .by-flows', (e) => getComputedStyle(e).display)).not.toBe(
        'none',
      );
      expect(await page.$eval('#ns-matrix .by-bytes', (e) => getComputedStyle(e).display)).toBe(
        'none',
      );
      await page.click('input[name="weight"][value="bytes"]');

      await page.click('input[name="deny"]');
      const shown = await page.$$eval('#flow-map .e', (els) =>
        els.map((e) => `${e.classList.contains('deny')} ${getComputedStyle(e).display}`),
      );
      expect(shown.filter((s) => s === 'true none')).toHaveLength(TALKS.length);
      expect(shown.filter((s) => s.startsWith('false') && !s.endsWith('none'))).toHaveLength(
        TALKS.filter((t) => t.allowedBy).length,
      );
      await page.click('input[name="deny"]');

      await page.hover('#flow-map .node[data-id="wep:client/client"] circle');
      const lit = await page.$$eval('#flow-map .e.hl', (els) =>
        els.map((e) => `${(e as SVGElement).dataset.src} ${(e as SVGElement).dataset.dst}`),
      );
      const touching = TALKS.filter((t) => t.from === 'client' || t.to === 'client');
      // Each of client's talks has a deny edge, and an allow edge when allowed.
      expect(lit).toHaveLength(touching.length + touching.filter((t) => t.allowedBy).length);
      expect(lit.every((l) => l.split(' ').includes('wep:client/client'))).toBe(true);
      await page.mouse.move(0, 0);
    });

    it('shows the what-if diff and marks the edges it changes', async () => {
      screenshotOnFailure(() => w, 'stars-what-if');
      const { page } = w!;
      const rows = (id: string) =>
        page.$$eval(`#${id} tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
        );
      expect(await rows('what-if-denied')).toEqual([
        ['client/client-6c8d7b5f9-*', 'stars/frontend', '80/TCP', '240', 'stars/frontend'],
      ]);
      expect(await rows('what-if-allowed')).toEqual([
        ['client/client', 'stars/backend', '6379/TCP', '360', ''],
      ]);
      const marked = () =>
        page.$$eval('#flow-map .e.wi', (els) =>
          els.map((e) => ({
            key: `${(e as SVGElement).dataset.src} ${(e as SVGElement).dataset.dst} ${e.getAttribute('class')}`,
            stroke: getComputedStyle(e).stroke,
          })),
        );
      const before = await marked();
      expect(before.map((m) => m.key).sort()).toEqual([
        'wep:client/client wep:stars/backend e deny wi wi-allow',
        'wep:client/client wep:stars/frontend e allow wi wi-deny',
      ]);
      await page.click('input[name="whatif"]');
      const after = await marked();
      // Marked: drawn in the what-if colours once the switch is on.
      expect(after.map((m) => m.stroke).sort()).toEqual(['rgb(191, 57, 137)', 'rgb(26, 127, 55)']);
      expect(after.map((m) => m.stroke)).not.toEqual(before.map((m) => m.stroke));
    });

    it('splits denied packets by policy, summing to the records’ denied packets', async () => {
      screenshotOnFailure(() => w, 'stars-denies');
      const { page } = w!;
      const bars = await page.$$eval('#denied-over-time rect', (els) =>
        els.map((e) => [
          (e as SVGElement).dataset.series,
          Number((e as SVGElement).dataset.packets),
        ]),
      );
      const denied = stars
        .filter((r) => r.action === 'deny')
        .reduce((n, r) => n + r.packetsIn + r.packetsOut, 0);
      expect(bars.reduce((n, [, p]) => n + (p as number), 0)).toBe(denied);
      expect(new Set(bars.map(([s]) => s))).toEqual(new Set(['policy default.default-deny']));
    });

    it('shows bytes in binary units and protocols by name, and cuts off no label', async () => {
      screenshotOnFailure(() => w, 'stars-labels');
      const { page } = w!;
      const talkers = await page.$$eval('#top-talkers .bar-row', (rows) =>
        rows.map((r) => ({
          label: r.querySelector('.bar-label')!.textContent,
          value: r.querySelector('.bar-value')!.textContent,
        })),
      );
      expect(talkers.length).toBeGreaterThan(0);
      for (const t of talkers) {
        expect(t.value).toMatch(/^\d+(\.\d)? (B|KiB|MiB|GiB|TiB)$/);
        expect(t.label).toMatch(/ \d+\/TCP$/);
      }
      const cells = await page.$$eval('#answers td', (tds) => tds.map((td) => td.textContent));
      expect(cells).toContain('TCP');
      expect(cells.some((c) => /^\d+(\.\d)? (KiB|MiB)$/.test(c ?? ''))).toBe(true);
      for (const b of await labelBoxes(page, 'svg text')) expect(outside(b)).toBeUndefined();
      // HTML labels: none runs past its box or off the page.
      const html = await page.$$eval('.bar-label, .legend li, #ns-matrix th', (els) =>
        els.map((e) => {
          const r = e.getBoundingClientRect();
          return {
            text: e.textContent,
            fits: e.scrollWidth <= e.clientWidth + 1,
            left: r.left,
            right: r.right,
            page: document.documentElement.clientWidth,
          };
        }),
      );
      for (const h of html) {
        expect(h.fits, h.text ?? '').toBe(true);
        expect(h.left, h.text ?? '').toBeGreaterThanOrEqual(0);
        expect(h.right, h.text ?? '').toBeLessThanOrEqual(h.page);
      }
    });
  });

  describe('200 workloads', () => {
    let w: Watched | undefined;
    beforeAll(async () => {
      w = await open(browser, join(dir, 'big.html'));
    });

    it('renders every workload, readable: labels inside the map, none over its neighbour', async () => {
      screenshotOnFailure(() => w, 'big-map');
      const { page, errors, requests } = w!;
      expect(errors).toEqual([]);
      expect(requests).toEqual([`file://${join(dir, 'big.html')}`]);
      const workloads = await page.$$eval('#flow-map .node[data-id^="wep:"]', (els) =>
        els.map((e) => `${(e as SVGElement).dataset.group}/${(e as SVGElement).dataset.label}`),
      );
      expect(workloads).toHaveLength(200);
      expect(new Set(workloads)).toEqual(new Set(big.workloads));
      const labels = await labelBoxes(page, '#flow-map .node text');
      expect(labels.length).toBeGreaterThanOrEqual(200);
      for (const b of labels) expect(outside(b)).toBeUndefined();
      for (const b of await labelBoxes(page, '#flow-map .group-label'))
        expect(outside(b)).toBeUndefined();
      // Neighbours on the ring (and the last with the first) never cover each other.
      for (let i = 0; i < labels.length; i++) {
        const a = labels[i]!;
        const b = labels[(i + 1) % labels.length]!;
        expect(overlap(a.corners, b.corners), `${a.text} / ${b.text}`).toBe(false);
      }
      const smallest = Math.min(...labels.map((l) => l.fontPx));
      expect(smallest).toBeGreaterThanOrEqual(7);
      // The denies of 24-field records are split by namespace, and the page says why.
      expect(await page.$eval('#denies + p', (p) => p.textContent)).toContain('24-field records');
    });
  });
});
