// The live view's page: figures from /events (Server-Sent Events), the frame from /frame.png
// when it changes, the rate chart drawn with uPlot. It only reads; it never asks fur to act.
'use strict';
(() => {
  const q = location.search.includes('token=') ? '?token=' + new URLSearchParams(location.search).get('token') : '';
  const withQ = (path, params) => {
    const p = new URLSearchParams(q ? q.slice(1) : '');
    for (const [k, v] of Object.entries(params || {})) p.set(k, String(v));
    const s = p.toString();
    return s ? `${path}?${s}` : path;
  };
  const $ = (id) => document.getElementById(id);
  const text = (id, t) => { const e = $(id); if (e.textContent !== t) e.textContent = t; };

  const MB = 1e6;
  const bytes = (n) => n >= 1e12 ? `${(n / 1e12).toFixed(2)} TB` : n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} kB` : `${n} B`;
  const rate = (n) => `${(n / MB).toFixed(n >= 100 * MB ? 0 : 1)} MB/s`;
  const fps = (n) => `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} frames/s`;
  const duration = (s) => {
    s = Math.round(s);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  };
  const clock = (iso) => iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : '–';

  let last = null;
  let ended = false;

  // ---- the frame: fetched when the committed frame (or the page asked for) changes, one at a time
  const img = $('frame');
  let shown = { seq: -1, page: '' };
  let fetching = false;
  let objectUrl = null;
  let pagePicked = '';
  $('page').addEventListener('change', (e) => { pagePicked = e.target.value; update(); });
  async function frame(f) {
    if (!f || f.notDrawn || fetching) return;
    if (f.seq === shown.seq && pagePicked === shown.page) return;
    fetching = true;
    const asked = pagePicked;
    try {
      const r = await fetch(withQ('/frame.png', { seq: f.seq, ...(asked === '' ? {} : { page: asked }) }));
      if (!r.ok) return;
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      await new Promise((resolve) => { img.onload = img.onerror = resolve; img.src = url; });
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = url;
      const seq = Number(r.headers.get('X-Fur-Frame'));
      const page = Number(r.headers.get('X-Fur-Page'));
      const row = Number(r.headers.get('X-Fur-Row'));
      shown = { seq, page: asked };
      img.dataset.seq = String(seq);
      img.dataset.row = String(row);
      img.dataset.page = String(page);
      text('frame-name', decodeURIComponent(r.headers.get('X-Fur-Name') || ''));
      text('frame-row', `#${row}`);
      text('frame-written', clock(r.headers.get('X-Fur-Written')));
      text('frame-committed', clock(r.headers.get('X-Fur-Committed')));
      $('frame-none').hidden = true;
    } catch { /* the next status tries again */ } finally {
      fetching = false;
    }
    if (last && last.frame && (last.frame.seq !== shown.seq || pagePicked !== shown.page)) frame(last.frame);
  }

  // ---- the chart: whole run, MB/s or frames/s
  const chart = { t: [], upload: [], instrument: [], uploadFps: [], instrumentFps: [] };
  let unit = 'mb';
  let plot = null;
  function series() {
    const limit = last && last.figures && last.figures.limit;
    const perFrame = (() => { // wire bytes a frame takes, for the limit in frames/s
      for (let i = chart.t.length - 1; i >= 0; i--) if (chart.uploadFps[i] && chart.upload[i]) return chart.upload[i] / chart.uploadFps[i];
      return null;
    })();
    if (unit === 'mb') {
      return [chart.t, chart.upload.map((v) => v / MB), chart.instrument.map((v) => v == null ? null : v / MB), chart.t.map(() => limit ? limit / MB : null)];
    }
    return [chart.t, chart.uploadFps, chart.instrumentFps, chart.t.map(() => limit && perFrame ? limit / perFrame : null)];
  }
  function draw() {
    const box = $('chart');
    $('chart-none').hidden = chart.t.length > 0;
    if (typeof uPlot === 'undefined' || chart.t.length === 0) return;
    const data = series();
    if (!plot) {
      const label = unit === 'mb' ? 'MB/s' : 'frames/s';
      plot = new uPlot({
        width: Math.max(200, box.clientWidth), height: 240,
        scales: { x: { time: false } },
        axes: [
          { values: (u, vals) => vals.map((v) => duration(v)), size: 32, gap: 4 },
          { label, size: 56, values: (u, vals) => vals.map((v) => v >= 100 ? v.toFixed(0) : v.toFixed(1)) },
        ],
        series: [
          { label: 'elapsed', value: (u, v) => v == null ? '–' : duration(v) },
          { label: 'upload', stroke: '#1f77b4', width: 2, fill: 'rgba(31,119,180,0.08)', value: (u, v) => v == null ? '–' : v.toFixed(1) },
          { label: 'instrument', stroke: '#e07b00', width: 2, value: (u, v) => v == null ? '–' : v.toFixed(1) },
          { label: 'limit', stroke: '#c0392b', width: 1.5, dash: [6, 4], value: (u, v) => v == null ? 'none' : v.toFixed(1) },
        ],
        legend: { live: true },
      }, data, box);
      box.dataset.points = String(chart.t.length);
    } else {
      plot.setData(data);
      box.dataset.points = String(chart.t.length);
    }
  }
  function setUnit(u) {
    unit = u;
    $('unit-mb').classList.toggle('on', u === 'mb');
    $('unit-fps').classList.toggle('on', u === 'fps');
    if (plot) { plot.destroy(); plot = null; }
    draw();
  }
  $('unit-mb').addEventListener('click', () => setUnit('mb'));
  $('unit-fps').addEventListener('click', () => setUnit('fps'));
  addEventListener('resize', () => { if (plot) plot.setSize({ width: Math.max(200, $('chart').clientWidth), height: 240 }); });

  // ---- the figures
  const listed = {};
  function list(id, items, line) {
    // rebuilt only when it changed: a repaint per update costs the machine the capture runs on
    const key = JSON.stringify(items);
    if (listed[id] === key) return;
    listed[id] = key;
    const ul = $(id);
    ul.replaceChildren(...(items.length ? items.slice().reverse().map(line) : [Object.assign(document.createElement('li'), { className: 'muted', textContent: 'none' })]));
  }
  function li(parts) {
    const e = document.createElement('li');
    for (const [cls, t] of parts) {
      const s = document.createElement(cls === 'time' ? 'time' : 'span');
      if (cls && cls !== 'time') s.className = cls;
      s.textContent = t;
      e.append(s);
    }
    return e;
  }
  let snippetsShown = '';
  function update() {
    const s = last;
    if (!s) return;
    const state = ended && s.state !== 'finished' && s.state !== 'failed' ? 'gone' : s.state;
    const badge = $('state');
    badge.className = `badge ${state}`;
    text('state', state === 'gone' ? 'fur stopped' : state);
    text('source', s.source || '');
    text('dest-url', s.destination.url);
    const f = s.figures;
    if (f) {
      text('elapsed', duration(s.ended ? s.ended.seconds : f.elapsedSec));
      text('frames-committed', String(f.frames.committed));
      text('frames-total', f.frames.total !== undefined ? ` of ${f.frames.total}` : f.frames.seen > f.frames.committed ? ` (${f.frames.seen} read)` : '');
      const percent = f.percent ?? (f.frames.total ? (100 * f.frames.committed) / f.frames.total : undefined);
      $('percent-bar').parentElement.hidden = percent === undefined;
      if (percent !== undefined) $('percent-bar').style.width = `${percent}%`;
      text('rate-current', rate(f.rate.current));
      const lastFps = chart.uploadFps.length ? chart.uploadFps[chart.uploadFps.length - 1] : null;
      text('rate-current-fps', lastFps == null ? '' : fps(lastFps));
      text('rate-average', rate(f.rate.average));
      text('limit', f.limit ? `limit ${rate(f.limit)}` : 'since the start');
      if (f.instrument) {
        text('instrument-rate', rate(f.instrument.rate));
        const k = $('keeping-up');
        k.className = `s ${f.instrument.keepingUp ? 'ok' : 'behind'}`;
        text('keeping-up', `${fps(f.instrument.fps)} · ${f.instrument.keepingUp ? 'fur keeps up' : `behind by ${rate(f.instrument.behindBy)}`}`);
      } else {
        text('instrument-rate', '–');
        text('keeping-up', s.command === 'watch' ? 'measured after a second or two' : 'a finished capture');
      }
      text('backlog-files', String(f.backlog.files));
      text('backlog-bytes', bytes(f.backlog.bytes));
      text('disk-free', f.disk ? bytes(f.disk.free) : '–');
      text('disk-full', f.disk ? (f.disk.fullInSec !== undefined ? `full in ~${duration(f.disk.fullInSec)}` : 'not filling') : '');
      text('reconnects', String(f.reconnects));
      text('eta', f.etaSec !== undefined && s.state === 'running' ? `ETA ${duration(f.etaSec)}` : '');
    }
    text('commits', String(s.commits));
    text('last-commit', s.lastCommitAt ? `last ${clock(s.lastCommitAt)}` : '');
    if (!f) text('reconnects', String(s.reconnects));
    const d = s.destination;
    text('d-url', d.url + (d.endpoint ? ` (${d.endpoint})` : ''));
    text('d-layout', `${d.layout} · --method ${d.method}`);
    text('d-filters', d.filters.length ? d.filters.join(', ') : 'none');
    text('d-size', d.fileBytes !== undefined ? bytes(d.fileBytes) : f ? `${bytes(f.bytes.committed)} written` : '–');
    text('d-sidecar', d.sidecar || '–');
    const snippets = JSON.stringify(s.open);
    if (snippets !== snippetsShown) {
      snippetsShown = snippets;
      $('snippets').replaceChildren(...Object.entries(s.open).map(([name, code]) => {
        const box = document.createElement('div');
        box.className = 'snippet';
        const label = Object.assign(document.createElement('div'), { className: 'label', textContent: name === 'h5py' ? 'open with h5py' : 'open with xarray (kerchunk index)' });
        const pre = Object.assign(document.createElement('pre'), { textContent: code });
        pre.dataset.snippet = name;
        const copy = Object.assign(document.createElement('button'), { className: 'copy', type: 'button', textContent: 'copy' });
        copy.addEventListener('click', () => {
          const done = () => { copy.textContent = 'copied'; setTimeout(() => { copy.textContent = 'copy'; }, 1500); };
          if (navigator.clipboard) navigator.clipboard.writeText(code).then(done, () => select(pre));
          else select(pre);
        });
        box.append(label, pre, copy);
        return box;
      }));
    }
    text('error-count', String(s.errors.length));
    $('error-count').classList.toggle('some', s.errors.length > 0);
    list('errors', s.errors, (e) => li([['time', clock(e.at)], ['tag', e.tag], ['', e.message]]));
    text('kept-count', String(s.kept.length));
    $('kept-count').classList.toggle('some', s.kept.length > 0);
    list('kept', s.kept, (k) => li([['', k.file], ['muted', ` — ${k.message.startsWith(k.file + ': ') ? k.message.slice(k.file.length + 2) : k.message}`]]));
    const fr = s.frame;
    $('page-pick').hidden = !fr || fr.pages < 2;
    if (fr) {
      text('pages', String(fr.pages));
      $('page').max = String(fr.pages - 1);
      if (fr.notDrawn) { $('frame-none').hidden = false; text('frame-none', fr.notDrawn); text('frame-name', fr.name); text('frame-row', `#${fr.row}`); }
    }
    frame(fr);
  }
  function select(el) {
    const r = document.createRange();
    r.selectNodeContents(el);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  }

  // ---- the stream
  const es = new EventSource(withQ('/events'));
  es.addEventListener('status', (e) => { ended = false; last = JSON.parse(e.data); update(); });
  es.addEventListener('chart', (e) => {
    const c = JSON.parse(e.data);
    for (const k of Object.keys(chart)) chart[k] = c[k];
    if (plot) { plot.destroy(); plot = null; }
    draw();
  });
  es.addEventListener('points', (e) => {
    const c = JSON.parse(e.data);
    for (const k of Object.keys(chart)) chart[k].push(...c[k]);
    draw();
  });
  es.addEventListener('end', () => { ended = true; es.close(); update(); });
  // fur went away without saying so (the browser keeps trying; a status clears this)
  es.addEventListener('error', () => { if (es.readyState !== EventSource.OPEN) { ended = true; update(); } });
  addEventListener('load', draw);
})();
