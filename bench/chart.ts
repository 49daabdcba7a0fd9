/**
 * Throughput against round trip, one panel per dataset, one line per uploader: an SVG written
 * by hand (no plotting library), so the bench needs nothing beyond the repository.
 */

export interface Point {
  tool: string;
  dataset: string;
  rttMs: number;
  MBps: number;
}

export interface Panel {
  dataset: string;
  title: string;
}

const COLORS = ['#1f77b4', '#aec7e8', '#2ca02c', '#98df8a', '#9467bd', '#c5b0d5', '#d62728', '#ff7f0e', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * `links`: the emulated link rate at each round trip (MB/s), drawn as a grey step; a round trip
 * of 0 is plain loopback (no relay, no limit).
 */
export function chart(points: Point[], panels: Panel[], tools: string[], rtts: number[], links: Map<number, number | undefined>, note: string): string {
  const W = 330, H = 300, M = { l: 52, r: 12, t: 34, b: 46 };
  const legendH = 18 * Math.ceil(tools.length / 3) + 10;
  const width = W * panels.length + 20;
  const height = H + legendH + 40;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  const xs = [...rtts].sort((a, b) => a - b);
  // round trips are spread evenly: 0, 10, 50, 100 ms would otherwise crowd the left
  const xOf = (rtt: number, x0: number, w: number) => x0 + (xs.indexOf(rtt) / Math.max(1, xs.length - 1)) * w;
  panels.forEach((panel, pi) => {
    const ox = 10 + pi * W;
    const x0 = ox + M.l, x1 = ox + W - M.r, y0 = M.t, y1 = H - M.b;
    const pts = points.filter((p) => p.dataset === panel.dataset);
    const top = niceCeil(Math.max(1, ...pts.map((p) => p.MBps), ...[...links.values()].filter((v): v is number => v !== undefined)));
    const yOf = (v: number) => y1 - (v / top) * (y1 - y0);
    out.push(`<text x="${(x0 + x1) / 2}" y="18" text-anchor="middle" font-size="12" font-weight="bold">${esc(panel.title)}</text>`);
    for (let i = 0; i <= 5; i++) {
      const v = (top * i) / 5;
      const y = yOf(v);
      out.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${x0 - 5}" y="${y + 4}" text-anchor="end">${Math.round(v)}</text>`);
    }
    out.push(`<line x1="${x0}" y1="${y1}" x2="${x1}" y2="${y1}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#333"/>`);
    for (const r of xs) {
      const x = xOf(r, x0, x1 - x0);
      const link = links.get(r);
      out.push(`<text x="${x}" y="${y1 + 15}" text-anchor="middle">${r === 0 ? 'loopback' : `${r} ms`}</text>`);
      out.push(`<text x="${x}" y="${y1 + 28}" text-anchor="middle" fill="#777">${link === undefined ? 'no limit' : `${Math.round(link * 8)} Mbit/s`}</text>`);
      if (link !== undefined) out.push(`<line x1="${x - 14}" y1="${yOf(link)}" x2="${x + 14}" y2="${yOf(link)}" stroke="#888" stroke-width="2" stroke-dasharray="3,2"/>`);
    }
    out.push(`<text transform="translate(${ox + 14},${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">MB/s</text>`);
    tools.forEach((tool, ti) => {
      const line = xs.map((r) => pts.find((p) => p.tool === tool && p.rttMs === r)).filter((p): p is Point => p !== undefined);
      if (!line.length) return;
      const color = COLORS[ti % COLORS.length]!;
      const dash = tool.startsWith('fur') ? '' : ' stroke-dasharray="5,3"';
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="${tool.startsWith('fur') ? 2.5 : 1.5}"${dash} points="${line.map((p) => `${xOf(p.rttMs, x0, x1 - x0).toFixed(1)},${yOf(p.MBps).toFixed(1)}`).join(' ')}"/>`);
      for (const p of line) out.push(`<circle cx="${xOf(p.rttMs, x0, x1 - x0).toFixed(1)}" cy="${yOf(p.MBps).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${tool}: ${p.MBps.toFixed(1)} MB/s`)}</title></circle>`);
    });
  });
  tools.forEach((tool, ti) => {
    const col = ti % 3, row = Math.floor(ti / 3);
    const x = 20 + col * ((width - 40) / 3), y = H + 14 + row * 18;
    const color = COLORS[ti % COLORS.length]!;
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${color}" stroke-width="${tool.startsWith('fur') ? 2.5 : 1.5}"${tool.startsWith('fur') ? '' : ' stroke-dasharray="5,3"'}/>`);
    out.push(`<text x="${x + 30}" y="${y + 4}">${esc(tool)}</text>`);
  });
  out.push(`<text x="20" y="${height - 10}" fill="#555">${esc(note)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
