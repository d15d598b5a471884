/// <reference lib="dom" />
/**
 * The report page's only script, inlined into the page as source text
 * (`PAGE_SCRIPT`): switches between weighting by bytes and by flows, shows
 * or hides allow, deny and what-if edges, highlights a node's edges on hover
 * or keyboard focus, and fits the map's viewBox to what the browser really
 * drew (labels included), so no label is cut off whatever the font. The page
 * is complete without it: every chart is drawn when the page is written.
 *
 * `pageScript` runs in the browser, not in Node: it must use nothing from
 * outside its own body (it is serialised with Function.prototype.toString).
 */
function pageScript(): void {
  const body = document.body;
  const form = document.getElementById('map-controls') as HTMLFormElement | null;
  const sync = (): void => {
    if (!form) return;
    const data = new FormData(form);
    const weight = data.get('weight') === 'flows' ? 'flows' : 'bytes';
    body.classList.toggle('w-flows', weight === 'flows');
    body.classList.toggle('w-bytes', weight === 'bytes');
    body.classList.toggle('hide-allow', data.get('allow') === null);
    body.classList.toggle('hide-deny', data.get('deny') === null);
    body.classList.toggle('show-whatif', data.get('whatif') !== null);
  };
  form?.addEventListener('change', sync);
  sync();

  const map = document.getElementById('flow-map') as SVGSVGElement | null;
  if (!map) return;
  // Fit the drawing (labels included) as the browser laid it out, with a small margin.
  const box = map.getBBox();
  const pad = 6;
  map.setAttribute(
    'viewBox',
    `${Math.floor(box.x - pad)} ${Math.floor(box.y - pad)} ${Math.ceil(box.width + 2 * pad)} ${Math.ceil(box.height + 2 * pad)}`,
  );

  let focused: string | null = null;
  const focus = (id: string | null): void => {
    if (id === focused) return;
    focused = id;
    map.classList.toggle('focus', id !== null);
    for (const el of map.querySelectorAll('.hl')) el.classList.remove('hl');
    if (id === null) return;
    const near = new Set([id]);
    for (const e of map.querySelectorAll<SVGElement>('.e')) {
      if (e.dataset.src === id || e.dataset.dst === id) {
        e.classList.add('hl');
        near.add(e.dataset.src ?? '');
        near.add(e.dataset.dst ?? '');
      }
    }
    for (const n of map.querySelectorAll<SVGElement>('.node'))
      if (near.has(n.dataset.id ?? '')) n.classList.add('hl');
  };
  const nodeOf = (t: EventTarget | null): string | null =>
    t instanceof Element ? (t.closest<SVGElement>('.node')?.dataset.id ?? null) : null;
  map.addEventListener('mouseover', (ev) => focus(nodeOf(ev.target)));
  map.addEventListener('mouseleave', () => focus(null));
  map.addEventListener('focusin', (ev) => focus(nodeOf(ev.target)));
  map.addEventListener('focusout', () => focus(null));
}

export const PAGE_SCRIPT = `(${pageScript.toString()})();`;
