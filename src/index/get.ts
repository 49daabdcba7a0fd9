/**
 * `fur get`: read part of a remote fur file with range requests — the metadata region (one
 * request, it sits at the front), then only the chunks the slice touches, merged when adjacent,
 * or the whole file when those chunks are most of it.
 */
import { FurError } from '../errors.js';
import { decodeChunk } from '../hdf5/filters.js';
import { H5File, type Dataset } from '../hdf5/index.js';
import { RangeCache, type FetchRange } from './range-cache.js';
import { parseSlice, type Range } from './slice.js';

/** the first request: fur keeps all metadata of an append file in its first MiB */
export const FIRST_REQUEST = 1 << 20;

export interface RemoteBytes {
  fetch: FetchRange;
  /** size and first bytes, from one request */
  first(length: number): Promise<{ size: number; data: Uint8Array }>;
  close(): Promise<void>;
}

export function httpBytes(url: string): RemoteBytes {
  const fetchRange: FetchRange = async (offset, length) => {
    const r = await fetch(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    if (r.status !== 206 && r.status !== 200) throw new FurError('http-failed', `${url}: HTTP ${r.status} for bytes ${offset}-${offset + length - 1}`, { url, status: r.status });
    const body = new Uint8Array(await r.arrayBuffer());
    return r.status === 200 ? body.subarray(offset, offset + length) : body;
  };
  return {
    fetch: fetchRange,
    async first(length) {
      const r = await fetch(url, { headers: { Range: `bytes=0-${length - 1}` } });
      if (r.status === 200) { const d = new Uint8Array(await r.arrayBuffer()); return { size: d.length, data: d }; }
      if (r.status !== 206) throw new FurError('http-failed', `${url}: HTTP ${r.status}`, { url, status: r.status });
      const total = /\/(\d+)$/.exec(r.headers.get('content-range') ?? '');
      if (!total) throw new FurError('http-failed', `${url}: the server sent no Content-Range total`, { url });
      return { size: Number(total[1]), data: new Uint8Array(await r.arrayBuffer()) };
    },
    async close() {},
  };
}

export interface GetResult {
  dataset: Dataset;
  shape: number[];
  data: Uint8Array;
  /** for variable-length datasets: the selected elements */
  items?: Uint8Array[];
  stats: { requests: number; bytes: number; fileSize: number };
}

export async function get(remote: RemoteBytes, datasetPath: string, sliceText?: string): Promise<GetResult> {
  const head = await remote.first(FIRST_REQUEST);
  const cache = new RangeCache(remote.fetch, head.size);
  cache.stats.requests = 1;
  cache.stats.bytes = head.data.length;
  cache.keep(0, head.data);
  const file = await H5File.open(cache, { readOnly: true });
  if (!file.has(datasetPath) || file.isGroup(datasetPath)) {
    throw new FurError('no-dataset', `no dataset ${datasetPath} in the file; it has ${file.paths().filter((p) => !file.isGroup(p)).join(', ')}`, { dataset: datasetPath });
  }
  const ds = file.dataset(datasetPath);
  const sel = parseSlice(sliceText, ds.shape);
  const shape = sel.map((r) => r.stop - r.start);
  const size = ds.type.size;
  const out = new Uint8Array(shape.reduce((a, b) => a * b, 1) * size);
  const refs = ds.chunk ? await file.chunkRefs(datasetPath) : [];
  const chunk = ds.chunk ?? ds.shape;
  const byOffset = new Map(refs.map((r) => [r.offset.join(','), r]));
  // chunks the selection touches
  const wanted: { origin: number[]; address: number; size: number }[] = [];
  const lo = sel.map((r, i) => Math.floor(r.start / chunk[i]));
  const hi = sel.map((r, i) => (r.stop > r.start ? Math.floor((r.stop - 1) / chunk[i]) : lo[i] - 1));
  if (hi.every((h, i) => h >= lo[i])) {
    const idx = [...lo];
    for (;;) {
      const origin = idx.map((g, i) => g * chunk[i]);
      if (ds.chunk) {
        const r = byOffset.get(origin.join(','));
        if (r) wanted.push({ origin, address: r.address, size: r.size });
      } else {
        const c = await file.contiguousExtent(datasetPath);
        if (c) wanted.push({ origin, address: c.address, size: c.size });
      }
      let k = idx.length - 1;
      while (k >= 0 && ++idx[k] > hi[k]) { idx[k] = lo[k]; k--; }
      if (k < 0) break;
    }
  }
  // An unfiltered chunk of whole frames stores its rows back to back: fetch only the rows
  // selected, not the whole chunk (a 6 MB chunk for one 0.5 MB frame otherwise). Fletcher-32
  // only appends 4 bytes, so the same holds; its check needs the whole chunk, so it is made
  // where the whole chunk is fetched anyway and skipped for part of one (`fur verify` checks all).
  const checksumOnly = ds.filters.every((f) => f.id === 'fletcher32');
  const wholeRows = checksumOnly && chunk.slice(1).every((c, i) => c === ds.shape[i + 1]);
  const rowBytes = chunk.slice(1).reduce((a, b) => a * b, 1) * size;
  const pieces = wanted.map((w) => {
    const r0 = Math.max(sel[0].start, w.origin[0]);
    const r1 = Math.min(sel[0].stop, w.origin[0] + chunk[0]);
    if (!wholeRows || (r0 === w.origin[0] && r1 - r0 === chunk[0])) return { ...w, chunk, decode: ds.filters.length > 0 };
    return { origin: [r0, ...w.origin.slice(1)], address: w.address + (r0 - w.origin[0]) * rowBytes, size: (r1 - r0) * rowBytes, chunk: [r1 - r0, ...chunk.slice(1)], decode: false };
  });
  await cache.prefetch(pieces.map((w) => ({ offset: w.address, length: w.size })));
  for (const w of pieces) {
    const stored = await cache.read(w.address, w.size);
    const raw = w.decode ? await decodeChunk(stored, ds.filters, size, `${datasetPath} chunk at ${w.address}`) : stored;
    copyIntersection(raw, w.origin, w.chunk, out, sel, size);
  }
  let items: Uint8Array[] | undefined;
  if (ds.type.class === 'vlen-bytes' || ds.type.class === 'vlen-str') items = await ds.readVlen(sel[0].start, sel[0].stop);
  await remote.close();
  return { dataset: ds, shape, data: out, items, stats: { ...cache.stats, fileSize: head.size } };
}

/** copy the part of a decoded chunk (at `origin`, shape `chunk`) inside `sel` into `out` (shape of sel) */
export function copyIntersection(raw: Uint8Array, origin: number[], chunk: number[], out: Uint8Array, sel: Range[], size: number): void {
  const n = chunk.length;
  const from = sel.map((r, i) => Math.max(r.start, origin[i]));
  const to = sel.map((r, i) => Math.min(r.stop, origin[i] + chunk[i]));
  if (from.some((f, i) => f >= to[i])) return;
  const outShape = sel.map((r) => r.stop - r.start);
  const cStride = new Array<number>(n);
  const oStride = new Array<number>(n);
  let cs = size, os = size;
  for (let i = n - 1; i >= 0; i--) { cStride[i] = cs; cs *= chunk[i]; oStride[i] = os; os *= outShape[i]; }
  const run = (to[n - 1] - from[n - 1]) * size;
  const idx = from.slice(0, n - 1);
  for (;;) {
    let c = (from[n - 1] - origin[n - 1]) * cStride[n - 1];
    let o = (from[n - 1] - sel[n - 1].start) * oStride[n - 1];
    for (let i = 0; i < n - 1; i++) { c += (idx[i] - origin[i]) * cStride[i]; o += (idx[i] - sel[i].start) * oStride[i]; }
    out.set(raw.subarray(c, c + run), o);
    let k = n - 2;
    while (k >= 0 && ++idx[k] >= to[k]) { idx[k] = from[k]; k--; }
    if (k < 0) break;
  }
}
