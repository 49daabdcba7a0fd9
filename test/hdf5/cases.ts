/**
 * The writer's test catalogue: files described as a list of operations (create groups and
 * datasets, append batches, set attributes, commit, reopen), run against fur's writer, with
 * what every reader must see computed here from the operations alone — a model of the
 * commit protocol, not the writer's own bookkeeping.
 *
 * The same cases feed the npm tier (h5wasm, HDF5 2.0; fur's own reader) and the interop tier
 * (h5py and h5dump, HDF5 1.10.8), and `randomCase` generates more for the property test.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attachScales, dimensionOnlyName, H5File, MemorySink, type Dataset, type FileOptions, type ScaleSpec } from '../../src/hdf5/index.js';
import type { AttrValue, Filter, RandomAccess } from '../../src/hdf5/index.js';
import { FileDestination } from '../../src/transport/file.js';
import type { H5Attr, H5Dataset, H5Doc, H5Value } from '../support/h5json.js';
import {
  dtypeInfo, elementBytes, isNumeric, isVlen, jsonScalar, numberLE, Rng,
  swapInPlace, vlenBytes, vlenString, type DtypeInfo,
} from './values.js';

// ---------------------------------------------------------------------------------------------
// what a case is

export interface DsSpec {
  path: string;
  /** a dtype spec string as the writer takes it: 'uint16', '>i4', 'float16', 'S12', 'U8:9', 'vlen-str' */
  dtype: string;
  /** shape of one row (every axis but the first) */
  frame: number[];
  /**
   * growable: unlimited first axis, starts empty; fixed: chunked, `rows` rows; contiguous: written
   * once; compact: `rows` rows kept in the object header (written by its 'compact' op)
   */
  kind: 'growable' | 'fixed' | 'contiguous' | 'compact';
  rows?: number;
  chunks?: number[];
  /** the chunk shape the writer must choose when `chunks` is left out (worked out by hand) */
  expectChunks?: number[];
  filters?: Filter[];
  /** a number, or one element's raw bytes in the file's byte order */
  fill?: number | bigint | number[];
  seed: number;
}

export type Op =
  | { op: 'group'; path: string }
  | { op: 'dataset'; ds: DsSpec }
  /** the next `rows` rows of the dataset's deterministic content */
  | { op: 'append'; path: string; rows: number }
  /** all rows at once (contiguous: Dataset.write; fixed: the remaining rows) */
  | { op: 'write'; path: string }
  | { op: 'attr'; path: string; name: string; attr: AttrCase }
  | { op: 'commit'; complete?: boolean; publishLast?: string }
  /** close (commit + trim) or abandon (as after a crash right after a commit), then H5File.open */
  | { op: 'reopen'; close: boolean }
  | { op: 'softlink'; path: string; target: string }
  /** create a compact dataset, or replace its value (a spec of kind 'compact': another seed or shape) */
  | { op: 'compact'; ds: DsSpec }
  /** mark scales and attach them: dataset path → the scale of each of its axes */
  | { op: 'scales'; scales: ScaleSpec[]; attach: [string, string[]][] };

/** An attribute value and what both oracles must print for it. */
export interface AttrCase { value: AttrValue; expect: H5Attr }

export interface Case {
  name: string;
  ops: Op[];
  file?: FileOptions;
  /** write through FileDestination to a local file instead of a MemorySink */
  sink?: 'memory' | 'file';
  /** also capture the file after every commit, with what it must show then */
  snapshots?: boolean;
  /** cut appends to fixed-size datasets down to the rows left (generated cases) */
  clampFixed?: boolean;
}

// ---------------------------------------------------------------------------------------------
// the model: what a reader must see

interface DsModel {
  spec: DsSpec;
  t: DtypeInfo;
  chunk: number[] | null;
  /** rows appended (growable, fixed) */
  n: number;
  /** rows published by the last commit */
  p: number;
  /** row ranges [start, end) of a fixed-size dataset skipped when it was reopened (they show the fill value) */
  gaps: [number, number][];
}

interface ObjModel { kind: 'group' | 'dataset' | 'softlink'; attrs: Map<string, H5Attr>; ds?: DsModel; target?: string }

/** One dataset's expected content, in the file's byte order, for fur's own reader. */
export interface DsExpect {
  path: string;
  spec: DsSpec;
  t: DtypeInfo;
  shape: number[];
  /** numeric and fixed-string datasets: element bytes as stored (file byte order) */
  raw?: Uint8Array;
  /** vlen datasets */
  items?: (string | Uint8Array)[];
}

export interface Expected { doc: H5Doc; datasets: DsExpect[] }

const product = (a: number[]) => a.reduce((x, y) => x * y, 1);

function chunkOf(s: DsSpec): number[] | null {
  if (s.kind === 'contiguous' || s.kind === 'compact') return null;
  const c = s.chunks ?? s.expectChunks;
  if (!c) throw new Error(`${s.path}: a chunked case names its chunks or the chunks it expects`);
  return c;
}

function typeFields(t: DtypeInfo): Pick<H5Dataset, 'dtype' | 'string' | 'base'> {
  switch (t.kind) {
    case 'fixed-ascii': return { dtype: t.numpy, string: { encoding: 'ascii', vlen: false } };
    case 'fixed-utf8': return { dtype: t.numpy, string: { encoding: 'utf-8', vlen: false } };
    case 'vlen-str': return { dtype: '|O', string: { encoding: 'utf-8', vlen: true } };
    case 'vlen-bytes': return { dtype: '|O', base: '|u1' };
    default: return { dtype: t.numpy };
  }
}

/** the fill element, little-endian and as stored */
function fillBytes(m: DsModel): { le: Uint8Array; stored: Uint8Array } {
  const f = m.spec.fill;
  if (f === undefined) return { le: new Uint8Array(m.t.size), stored: new Uint8Array(m.t.size) };
  if (Array.isArray(f)) {
    const stored = new Uint8Array(f);
    return { stored, le: m.t.bigEndian ? swapInPlace(stored.slice(), m.t.size) : stored };
  }
  const le = numberLE(m.t, f);
  return { le, stored: m.t.bigEndian ? swapInPlace(le.slice(), m.t.size) : le };
}

function rowElems(s: DsSpec): number { return product(s.frame); }

/** rows a reader sees, and how many of them hold written data (the rest show the fill value) */
function visible(m: DsModel): { rows: number; data: number } {
  if (m.spec.kind === 'growable') return { rows: m.p, data: m.p };
  return { rows: m.spec.rows!, data: m.p };
}

function vlenItems(m: DsModel, start: number, count: number): (string | Uint8Array)[] {
  const out: (string | Uint8Array)[] = [];
  for (let i = start; i < start + count; i++) out.push(m.t.kind === 'vlen-str' ? vlenString(m.spec.seed, i) : vlenBytes(m.spec.seed, i));
  return out;
}

function fixedStringText(b: Uint8Array): string {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return Buffer.from(b.subarray(0, end)).toString('utf8');
}

function expectDataset(path: string, m: DsModel, attrs: Map<string, H5Attr>): { doc: H5Dataset; exp: DsExpect } {
  const s = m.spec;
  const { rows, data } = visible(m);
  const shape = [rows, ...s.frame];
  const per = rowElems(s);
  const filters = (s.filters ?? []).map((f) =>
    f.id === 'deflate' ? { id: 1, cd_values: [f.level] } : f.id === 'shuffle' ? { id: 2, cd_values: [m.t.size] } : { id: 3, cd_values: [] as number[] });
  const deflate = (s.filters ?? []).find((f) => f.id === 'deflate') as { level: number } | undefined;
  let value: H5Value;
  const exp: DsExpect = { path, spec: s, t: m.t, shape };
  if (isVlen(m.t)) {
    if (data !== rows) throw new Error(`${path}: case leaves vlen elements unwritten`);
    const items = vlenItems(m, 0, rows * per);
    exp.items = items;
    value = m.t.kind === 'vlen-str'
      ? { kind: 'strings', items: items as string[] }
      : { kind: 'vlen-bytes', items: (items as Uint8Array[]).map((b) => Buffer.from(b).toString('base64')) };
  } else {
    const fill = fillBytes(m);
    const le = new Uint8Array(rows * per * m.t.size);
    const stored = new Uint8Array(le.length);
    le.set(elementBytes(m.t, s.seed, 0, data * per, true));
    stored.set(elementBytes(m.t, s.seed, 0, data * per, false));
    const fillRows = (a: number, b: number) => {
      for (let o = a * per * m.t.size; o < b * per * m.t.size; o += m.t.size) { le.set(fill.le, o); stored.set(fill.stored, o); }
    };
    fillRows(data, rows);
    for (const [a, b] of m.gaps) fillRows(a, b);
    exp.raw = stored;
    if (isNumeric(m.t)) value = { kind: 'bytes', base64: Buffer.from(le).toString('base64') };
    else {
      const items: string[] = [];
      for (let o = 0; o < le.length; o += m.t.size) items.push(fixedStringText(le.subarray(o, o + m.t.size)));
      value = { kind: 'strings', items };
    }
  }
  const doc: H5Dataset = {
    kind: 'dataset',
    ...typeFields(m.t),
    shape,
    maxshape: s.kind === 'growable' ? [null, ...s.frame] : shape,
    chunks: m.chunk,
    filters,
    compression: deflate ? 'gzip' : null,
    compression_opts: deflate ? deflate.level : null,
    shuffle: filters.some((f) => f.id === 2),
    fletcher32: filters.some((f) => f.id === 3),
    value,
    attrs: Object.fromEntries(attrs),
  };
  return { doc, exp };
}

class Model {
  objects = new Map<string, ObjModel>([['/', { kind: 'group', attrs: new Map() }]]);
  /** the state the last commit published */
  published: Map<string, ObjModel> = new Map();
  dirty = true;

  private parentChain(path: string): string[] {
    const parts = path.split('/').filter(Boolean);
    return parts.slice(0, -1).map((_, i) => '/' + parts.slice(0, i + 1).join('/'));
  }

  group(path: string): void {
    for (const p of [...this.parentChain(path), path]) if (!this.objects.has(p)) this.objects.set(p, { kind: 'group', attrs: new Map() });
    this.dirty = true;
  }
  dataset(s: DsSpec): DsModel {
    for (const p of this.parentChain(s.path)) if (!this.objects.has(p)) this.objects.set(p, { kind: 'group', attrs: new Map() });
    const m: DsModel = { spec: s, t: dtypeInfo(s.dtype), chunk: chunkOf(s), n: 0, p: 0, gaps: [] };
    this.objects.set(s.path, { kind: 'dataset', attrs: new Map(), ds: m });
    this.dirty = true;
    return m;
  }
  /** the path a path names once soft links along it are followed */
  resolve(path: string): string {
    for (let hops = 0; hops < 16 && !this.objects.get(path)?.ds; hops++) {
      const link = [...this.objects].find(([p, o]) => o.kind === 'softlink' && (path === p || path.startsWith(p + '/')));
      if (!link) break;
      path = link[1].target! + path.slice(link[0].length);
    }
    return path;
  }
  ds(path: string): DsModel {
    const m = this.objects.get(this.resolve(path))?.ds;
    if (!m) throw new Error(`case: no dataset ${path}`);
    return m;
  }
  commit(complete: boolean): void {
    for (const o of this.objects.values()) {
      const m = o.ds;
      if (!m) continue;
      if (m.spec.kind === 'contiguous' || m.spec.kind === 'compact') continue;
      if (!complete || (m.spec.kind === 'fixed' && m.n === m.spec.rows)) m.p = m.n;
      else m.p = Math.max(m.p, Math.floor(m.n / m.chunk![0]) * m.chunk![0]);
    }
    this.published = this.clone();
    this.dirty = false;
  }
  /** after abandoning the writer: only what the last commit published survives */
  abandon(): void {
    this.objects = this.clone(this.published);
    for (const o of this.objects.values()) if (o.ds) o.ds.n = o.ds.p;
  }
  /**
   * After H5File.open: a growable dataset resumes at its extent. A fixed-size one records no
   * row count, only the chunks its index holds, so it resumes at the end of its last chunk row;
   * rows skipped that way keep the fill value.
   */
  reopened(): void {
    for (const o of this.objects.values()) {
      const m = o.ds;
      if (!m || m.spec.kind !== 'fixed') continue;
      const at = Math.min(m.spec.rows!, Math.ceil(m.p / m.chunk![0]) * m.chunk![0]);
      if (at > m.p) m.gaps.push([m.p, at]);
      m.n = m.p = at;
    }
    this.published = this.clone();
  }
  private clone(from = this.objects): Map<string, ObjModel> {
    return new Map([...from].map(([k, o]) => [k, { kind: o.kind, attrs: new Map(o.attrs), ds: o.ds && { ...o.ds, gaps: [...o.ds.gaps] }, target: o.target }]));
  }

  expected(state = this.published): Expected {
    const objects: H5Doc['objects'] = {};
    const datasets: DsExpect[] = [];
    const paths = [...state.keys()];
    for (const path of paths) {
      const o = state.get(path)!;
      if (o.kind === 'softlink') {
        objects[path] = { kind: 'softlink', target: o.target! };
      } else if (o.kind === 'group') {
        const prefix = path === '/' ? '/' : path + '/';
        const members = paths.filter((p) => p !== path && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
          .map((p) => p.slice(prefix.length)).sort();
        objects[path] = { kind: 'group', members, attrs: Object.fromEntries(o.attrs) };
      } else {
        const { doc, exp } = expectDataset(path, o.ds!, o.attrs);
        objects[path] = doc;
        datasets.push(exp);
      }
    }
    return { doc: { reader: 'expected (model)', objects }, datasets };
  }
}

// ---------------------------------------------------------------------------------------------
// running a case

export interface Snapshot { label: string; bytes: Uint8Array; expected: Expected }

export interface CaseResult {
  bytes: Uint8Array;
  expected: Expected;
  snapshots: Snapshot[];
  /** local file path, for cases written through FileDestination */
  path?: string;
}

export interface RunHooks {
  /** a sink for memory cases (e.g. one that records or drops writes) */
  makeSink?: () => MemorySink;
  afterCreate?(file: H5File, expected: Expected): void;
  beforeCommit?(file: H5File, op: Op & { op: 'commit' }): void;
  afterCommit?(file: H5File, expected: Expected): void;
}

function datasetOptions(s: DsSpec): Parameters<H5File['createDataset']>[1] {
  const t = dtypeInfo(s.dtype);
  const fillValue = s.fill === undefined ? undefined : Array.isArray(s.fill) ? new Uint8Array(s.fill)
    : (t.size === 8 && t.kind !== 'float') ? BigInt(s.fill) : s.fill;
  const base = { dtype: s.dtype, chunks: s.chunks, filters: s.filters, fillValue };
  if (s.kind === 'growable') return { ...base, shape: [0, ...s.frame], maxshape: [null, ...s.frame] };
  if (s.kind === 'fixed') return { ...base, shape: [s.rows!, ...s.frame], layout: 'chunked' };
  return { ...base, shape: [s.rows!, ...s.frame], layout: 'contiguous' };
}

/** rows [start, start+count) of a dataset as the writer takes them */
async function put(ds: Dataset, m: DsModel, start: number, count: number): Promise<void> {
  const per = rowElems(m.spec);
  if (isVlen(m.t)) {
    const items = vlenItems(m, start * per, count * per);
    if (m.spec.kind === 'contiguous') await ds.write(ds.storeVlen(items));
    else await ds.appendVlen(items);
    return;
  }
  const bytes = elementBytes(m.t, m.spec.seed, start * per, count * per, false);
  if (m.spec.kind === 'contiguous') await ds.write(bytes);
  else await ds.append(bytes, count);
}

export async function runCase(c: Case, workDir?: string, hooks: RunHooks = {}): Promise<CaseResult> {
  const model = new Model();
  const snapshots: Snapshot[] = [];
  let mem: MemorySink | undefined;
  let dest: FileDestination | undefined;
  let path: string | undefined;
  let sink: RandomAccess;
  if (c.sink === 'file') {
    if (!workDir) throw new Error('a file case needs a work directory');
    dest = await FileDestination.open(workDir);
    path = join(workDir, `${c.name.replace(/[^\w.-]+/g, '_')}.h5`);
    sink = await dest.openWrite(path, { truncate: true });
  } else {
    sink = mem = hooks.makeSink?.() ?? new MemorySink();
  }
  const bytesNow = async (): Promise<Uint8Array> => (mem ? mem.bytes() : new Uint8Array(await readFile(path!)));

  let file = await H5File.create(sink, c.file);
  model.commit(false); // create() publishes the empty root group
  hooks.afterCreate?.(file, model.expected());
  for (const op of c.ops) {
    switch (op.op) {
      case 'group':
        file.createGroup(op.path);
        model.group(op.path);
        break;
      case 'dataset':
        file.createDataset(op.ds.path, datasetOptions(op.ds));
        model.dataset(op.ds);
        break;
      case 'append': {
        const m = model.ds(op.path);
        let rows = op.rows;
        if (m.spec.kind === 'fixed' && m.n + rows > m.spec.rows!) {
          if (!c.clampFixed) throw new Error(`case ${c.name}: ${op.path} overflows`);
          rows = m.spec.rows! - m.n;
          if (rows === 0) break;
        }
        await put(file.dataset(op.path), m, m.n, rows);
        m.n += rows;
        model.dirty = true;
        break;
      }
      case 'write': {
        const m = model.ds(op.path);
        const rows = m.spec.rows! - m.n;
        await put(file.dataset(op.path), m, m.n, rows);
        m.n += rows;
        if (m.spec.kind === 'contiguous') m.p = m.n; // contiguous data is in place at once
        model.dirty = true;
        break;
      }
      case 'softlink':
        file.softLink(op.path, op.target);
        if (op.path.lastIndexOf('/') > 0) model.group(op.path.slice(0, op.path.lastIndexOf('/')));
        model.objects.set(op.path, { kind: 'softlink', attrs: new Map(), target: op.target });
        model.dirty = true;
        break;
      case 'compact': {
        const s = op.ds;
        const t = dtypeInfo(s.dtype);
        file.writeCompact(s.path, { dtype: s.dtype, shape: [s.rows!, ...s.frame], data: elementBytes(t, s.seed, 0, s.rows! * rowElems(s), false) });
        const existing = model.objects.get(s.path);
        const m = model.dataset(s);
        m.n = m.p = s.rows!;
        if (existing) model.objects.get(s.path)!.attrs = existing.attrs;
        break;
      }
      case 'scales': {
        attachScales(file, op.scales, new Map(op.attach));
        const fixed = (text: string): H5Attr => ({ dtype: `|S${text.length + 1}`, string: { encoding: 'ascii', vlen: false }, shape: [], value: text });
        const users = new Map<string, number>();
        for (const [path, axes] of op.attach) {
          model.objects.get(path)!.attrs.set('DIMENSION_LIST', { dtype: '|O', base: 'ref', shape: [axes.length], value: axes });
          for (const a of axes) users.set(a, (users.get(a) ?? 0) + 1);
        }
        for (const sc of op.scales) {
          const attrs = model.objects.get(sc.path)!.attrs;
          attrs.set('CLASS', fixed('DIMENSION_SCALE'));
          attrs.set('NAME', fixed(sc.name));
          if (users.has(sc.path)) attrs.set('REFERENCE_LIST', { dtype: 'compound(dataset:ref,dimension:<i4)', shape: [users.get(sc.path)!], value: null });
        }
        model.dirty = true;
        break;
      }
      case 'attr':
        file.setAttr(op.path, op.name, op.attr.value);
        model.objects.get(op.path)!.attrs.set(op.name, op.attr.expect);
        model.dirty = true;
        break;
      case 'commit': {
        hooks.beforeCommit?.(file, op);
        await file.commit({ complete: op.complete, publishLast: op.publishLast ? file.dataset(op.publishLast) : undefined });
        model.commit(op.complete ?? false);
        const exp = model.expected();
        hooks.afterCommit?.(file, exp);
        if (c.snapshots) snapshots.push({ label: `after commit ${snapshots.length + 1}`, bytes: await bytesNow(), expected: exp });
        break;
      }
      case 'reopen': {
        if (op.close) {
          await file.close();
          model.commit(false);
        } else {
          await sink.close(); // the writer is dropped without a word, as if it had crashed
          model.abandon();
        }
        if (dest) sink = await dest.openWrite(path!);
        file = await H5File.open(sink, c.file);
        model.reopened();
        break;
      }
    }
  }
  await file.close();
  model.commit(false);
  return { bytes: await bytesNow(), expected: model.expected(), snapshots, path };
}

// ---------------------------------------------------------------------------------------------
// attributes of every kind, with what the oracles print

const vstr = { dtype: '|O', string: { encoding: 'utf-8' as const, vlen: true } };

export function attrKinds(): [string, AttrCase][] {
  const u64 = new BigUint64Array([0n, 2n ** 64n - 1n, 2n ** 53n + 1n]);
  const i64 = new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, -5n]);
  return [
    ['int', { value: 42, expect: { dtype: '<i8', shape: [], value: 42 } }],
    ['negative', { value: -7, expect: { dtype: '<i8', shape: [], value: -7 } }],
    ['max_safe', { value: Number.MAX_SAFE_INTEGER, expect: { dtype: '<i8', shape: [], value: Number.MAX_SAFE_INTEGER } }],
    ['float', { value: -1.25e-3, expect: { dtype: '<f8', shape: [], value: -1.25e-3 } }],
    ['nan', { value: NaN, expect: { dtype: '<f8', shape: [], value: 'NaN' } }],
    ['inf', { value: -Infinity, expect: { dtype: '<f8', shape: [], value: '-Infinity' } }],
    ['bigint', { value: 2n ** 62n + 3n, expect: { dtype: '<i8', shape: [], value: (2n ** 62n + 3n).toString() } }],
    ['bigint_neg', { value: -(2n ** 60n), expect: { dtype: '<i8', shape: [], value: (-(2n ** 60n)).toString() } }],
    ['text', { value: 'héllo 𝄞 wörld', expect: { ...vstr, shape: [], value: 'héllo 𝄞 wörld' } }],
    ['empty_text', { value: '', expect: { ...vstr, shape: [], value: '' } }],
    ['flag', { value: true, expect: { dtype: '|u1', shape: [], value: 1 } }],
    ['ints', { value: [1, -2, 3], expect: { dtype: '<i8', shape: [3], value: [1, -2, 3] } }],
    ['floats', { value: [0.5, -1e300, 3], expect: { dtype: '<f8', shape: [3], value: [0.5, -1e300, 3] } }],
    ['empty_list', { value: [], expect: { dtype: '<i8', shape: [0], value: [] } }],
    ['bigints', { value: [1n, 2n ** 63n - 1n], expect: { dtype: '<i8', shape: [2], value: [1, (2n ** 63n - 1n).toString()] } }],
    ['texts', { value: ['a', '', 'ünï', 'x'.repeat(300)], expect: { ...vstr, shape: [4], value: ['a', '', 'ünï', 'x'.repeat(300)] } }],
    ['i8', { value: new Int8Array([-128, 127, 0]), expect: { dtype: '|i1', shape: [3], value: [-128, 127, 0] } }],
    ['u8', { value: new Uint8Array([0, 255]), expect: { dtype: '|u1', shape: [2], value: [0, 255] } }],
    ['i16', { value: new Int16Array([-32768, 32767]), expect: { dtype: '<i2', shape: [2], value: [-32768, 32767] } }],
    ['u16', { value: new Uint16Array([65535]), expect: { dtype: '<u2', shape: [1], value: [65535] } }],
    ['i32', { value: new Int32Array([-(2 ** 31), 2 ** 31 - 1]), expect: { dtype: '<i4', shape: [2], value: [-(2 ** 31), 2 ** 31 - 1] } }],
    ['u32', { value: new Uint32Array([2 ** 32 - 1, 0]), expect: { dtype: '<u4', shape: [2], value: [2 ** 32 - 1, 0] } }],
    ['i64', { value: i64, expect: { dtype: '<i8', shape: [3], value: [...i64].map(jsonScalar) } }],
    ['u64', { value: u64, expect: { dtype: '<u8', shape: [3], value: [...u64].map(jsonScalar) } }],
    ['f32', { value: new Float32Array([1.5, NaN, -0.1]), expect: { dtype: '<f4', shape: [3], value: [1.5, 'NaN', Math.fround(-0.1)] } }],
    ['f64', { value: new Float64Array([Math.PI, Infinity]), expect: { dtype: '<f8', shape: [2], value: [Math.PI, 'Infinity'] } }],
    ['fixed', { value: { dtype: 'S8', shape: [3], data: ['ab', 'cdefghij', ''] }, expect: { dtype: '|S8', string: { encoding: 'ascii', vlen: false }, shape: [3], value: ['ab', 'cdefghij', ''] } }],
    ['fixed_scalar', { value: { dtype: 'S5', shape: [], data: ['hello'] }, expect: { dtype: '|S5', string: { encoding: 'ascii', vlen: false }, shape: [], value: 'hello' } }],
    ['fixed_utf8', { value: { dtype: 'U8:7', shape: [2], data: ['ü€', 'abc'] }, expect: { dtype: '|S7', string: { encoding: 'utf-8', vlen: false }, shape: [2], value: ['ü€', 'abc'] } }],
    ['vlen_2d', { value: { dtype: 'vlen-str', shape: [2, 2], data: ['a', 'b', 'çd', ''] }, expect: { ...vstr, shape: [2, 2], value: ['a', 'b', 'çd', ''] } }],
    ['be_matrix', { value: { dtype: '>i2', shape: [2, 3], data: [1, -2, 3, 32767, -32768, 0] }, expect: { dtype: '>i2', shape: [2, 3], value: [1, -2, 3, 32767, -32768, 0] } }],
    ['be_double', { value: { dtype: '>f8', shape: [], data: [-2.5] }, expect: { dtype: '>f8', shape: [], value: -2.5 } }],
    ['half', { value: { dtype: 'float16', shape: [4], data: [1.5, -2, 65504, 2 ** -24] }, expect: { dtype: '<f2', shape: [4], value: [1.5, -2, 65504, 2 ** -24] } }],
    ['half_be', { value: { dtype: '>f2', shape: [], data: [-0.375] }, expect: { dtype: '>f2', shape: [], value: -0.375 } }],
    ['u64_typed', { value: { dtype: 'uint64', shape: [2], data: new BigUint64Array([2n ** 64n - 2n, 7n]) }, expect: { dtype: '<u8', shape: [2], value: [(2n ** 64n - 2n).toString(), 7] } }],
    ['cube', { value: { dtype: 'int32', shape: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] }, expect: { dtype: '<i4', shape: [2, 2, 2], value: [1, 2, 3, 4, 5, 6, 7, 8] } }],
  ];
}

// ---------------------------------------------------------------------------------------------
// the catalogue

export const NUMERIC_DTYPES = ['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16', 'float32', 'float64'] as const;
export const BIG_ENDIAN_DTYPES = ['>i2', '>i4', '>i8', '>u2', '>u4', '>u8', '>f2', '>f4', '>f8'] as const;
export const STRING_DTYPES = ['S1', 'S12', 'U8:1', 'U8:12', 'vlen-str', 'vlen-bytes'] as const;
export const ALL_DTYPES: readonly string[] = [...NUMERIC_DTYPES, ...BIG_ENDIAN_DTYPES, ...STRING_DTYPES];

/** Every ordered selection of one to three of the filters: 15 pipelines. */
export function filterOrders(level = 4): Filter[][] {
  const all: Filter[] = [{ id: 'shuffle' }, { id: 'deflate', level }, { id: 'fletcher32' }];
  const out: Filter[][] = [];
  const rec = (cur: Filter[], rest: Filter[]) => {
    if (cur.length) out.push(cur);
    rest.forEach((f, i) => rec([...cur, f], rest.filter((_, j) => j !== i)));
  };
  rec([], all);
  return out;
}

const filterName = (fs: Filter[]) => fs.map((f) => (f.id === 'deflate' ? `deflate${f.level}` : f.id)).join('+') || 'none';

/** append batches of `sizes`, committing after every `every` batches */
function batches(path: string | string[], sizes: number[], every = 1, complete?: (i: number) => boolean): Op[] {
  const paths = Array.isArray(path) ? path : [path];
  const ops: Op[] = [];
  sizes.forEach((n, i) => {
    for (const p of paths) ops.push({ op: 'append', path: p, rows: n });
    if ((i + 1) % every === 0) ops.push({ op: 'commit', complete: complete?.(i) });
  });
  return ops;
}

function ds(path: string, dtype: string, frame: number[], kind: DsSpec['kind'], more: Partial<DsSpec> = {}): DsSpec {
  let seed = 0;
  for (const ch of path + dtype) seed = (Math.imul(seed, 31) + ch.charCodeAt(0)) | 0;
  return { path, dtype, frame, kind, seed, ...more };
}

export function catalogue(): Case[] {
  const cases: Case[] = [];
  const add = (c: Case) => cases.push(c);

  // every dtype, contiguous, rank 1 and 2
  add({
    name: 'dtypes-contiguous',
    ops: ALL_DTYPES.flatMap((dt, i): Op[] => {
      const vlen = dt.startsWith('vlen');
      const a = ds(`/r1/${dt.replace(/[^\w]/g, '_')}`, dt, [], 'contiguous', { rows: 9 + i });
      const b = ds(`/r2/${dt.replace(/[^\w]/g, '_')}`, dt, vlen ? [] : [3], 'contiguous', { rows: 4 });
      return [{ op: 'dataset', ds: a }, { op: 'write', path: a.path }, { op: 'dataset', ds: b }, { op: 'write', path: b.path }];
    }),
  });

  // every dtype, chunked and growable, chunks splitting the frame, partial chunks and commits
  add({
    name: 'dtypes-growable',
    ops: ALL_DTYPES.flatMap((dt): Op[] => {
      const vlen = dt.startsWith('vlen');
      const s = ds(`/${dt.replace(/[^\w]/g, '_')}`, dt, vlen ? [] : [5], 'growable', { chunks: vlen ? [4] : [4, 2] });
      return [{ op: 'dataset', ds: s }, ...batches(s.path, [3, 5, 1, 7, 4, 2], 2)];
    }),
  });

  // every dtype through a filter pipeline (shuffle over the element size, deflate, checksum — not on
  // variable-length data, whose chunks hold heap references only: the writer refuses it, as libhdf5 does)
  add({
    name: 'dtypes-filtered',
    ops: ALL_DTYPES.flatMap((dt, i): Op[] => {
      const vlen = dt.startsWith('vlen');
      const s = ds(`/f/${dt.replace(/[^\w]/g, '_')}`, dt, vlen ? [] : [2, 3], 'growable', {
        chunks: vlen ? [3] : [3, 2, 2], filters: [{ id: 'shuffle' }, { id: 'deflate', level: i % 10 }, ...(vlen ? [] : [{ id: 'fletcher32' } as const])],
      });
      return [{ op: 'dataset', ds: s }, ...batches(s.path, [1, 4, 2, 6], 1)];
    }),
  });

  // rank 1 to 8, contiguous and chunked, chunks splitting axes and leaving edge chunks
  for (const kind of ['contiguous', 'growable', 'fixed'] as const) {
    const ops: Op[] = [];
    for (let rank = 1; rank <= 8; rank++) {
      const frame = [3, 2, 4, 1, 2, 3, 2].slice(0, rank - 1);
      const chunks = [2, ...frame.map((d, i) => (i % 2 === 0 ? Math.max(1, d - 1) : d))];
      const dt = ['uint8', '>i4', 'float64', 'int16', 'float16', 'S3', 'uint32', '>u8'][rank - 1]!;
      const s = ds(`/rank${rank}`, dt, frame, kind, kind === 'growable' ? { chunks } : kind === 'fixed' ? { chunks, rows: 7 } : { rows: 5 });
      ops.push({ op: 'dataset', ds: s });
      if (kind === 'growable') ops.push(...batches(s.path, [1, 2, 3, 1], 2));
      else if (kind === 'fixed') ops.push(...batches(s.path, [3, 4], 1));
      else ops.push({ op: 'write', path: s.path });
    }
    add({ name: `ranks-1-8-${kind}`, ops });
  }

  // every filter pipeline, in every order
  add({
    name: 'filter-orders',
    ops: filterOrders().flatMap((fs, i): Op[] => {
      const dt = ['int32', 'float64', 'uint16', '>i8', 'float16'][i % 5]!;
      const s = ds(`/${filterName(fs)}`, dt, [6, 5], 'growable', { chunks: [4, 3, 5], filters: fs.map((f) => (f.id === 'deflate' ? { ...f, level: (i * 3) % 10 } : f)) });
      return [{ op: 'dataset', ds: s }, ...batches(s.path, [2, 3, 5, 1, 4], 2)];
    }),
  });
  add({
    name: 'filter-orders-fixed',
    ops: filterOrders(6).flatMap((fs): Op[] => {
      const s = ds(`/${filterName(fs)}`, 'uint8', [7], 'fixed', { rows: 10, chunks: [3, 4], filters: fs, fill: 0x5a });
      return [{ op: 'dataset', ds: s }, ...batches(s.path, [2, 5], 1)];
    }),
  });
  add({
    name: 'fletcher32-alone-odd-lengths',
    ops: [1, 3, 5, 7].flatMap((w): Op[] => {
      // chunks of an odd number of bytes: Fletcher-32 over a final lone byte
      const s = ds(`/odd${w}`, 'uint8', [w], 'growable', { chunks: [3, w], filters: [{ id: 'fletcher32' }] });
      return [{ op: 'dataset', ds: s }, ...batches(s.path, [1, 2, 4, 1], 1)];
    }),
  });

  // fill values where readers see them: fixed-size chunked datasets only partly written
  add({
    name: 'fill-values',
    ops: [
      ...([
        ['int16', -7], ['>u4', 0xdeadbeef], ['float32', 1.5], ['float16', -0.5], ['>f2', 2 ** -24], ['float64', -1e-300],
        ['int64', -(2n ** 62n)], ['>u8', 2n ** 64n - 3n], ['uint8', 200], ['S6', [110, 111, 110, 101, 0, 0]],
        ['U8:4', [0xc3, 0xbc, 0x21, 0]], ['>i2', [0x12, 0x34]],
      ] as [string, number | bigint | number[]][]).flatMap(([dt, fill], i): Op[] => {
        const s = ds(`/fill${i}_${dt.replace(/[^\w]/g, '_')}`, dt, [3], 'fixed', { rows: 11, chunks: [4, 2], fill });
        return [{ op: 'dataset', ds: s }, ...batches(s.path, [2, 3], 1)]; // rows 5..10 never written
      }),
      { op: 'dataset', ds: ds('/never-written', 'int32', [2, 2], 'fixed', { rows: 6, chunks: [2, 1, 2], fill: 99 }) },
      { op: 'dataset', ds: ds('/filtered-fill', 'float64', [4], 'fixed', { rows: 9, chunks: [2, 3], fill: -2.5, filters: [{ id: 'deflate', level: 1 }, { id: 'fletcher32' }] }) },
      ...batches('/filtered-fill', [3, 1], 1),
      { op: 'dataset', ds: ds('/no-fill', 'uint16', [3], 'fixed', { rows: 5, chunks: [2, 3] }) },
      ...batches('/no-fill', [1], 1),
      { op: 'dataset', ds: ds('/growable-fill', 'int8', [3], 'growable', { chunks: [4, 2], fill: -1 }) },
      ...batches('/growable-fill', [5, 1, 3], 1),
    ],
  });

  // groups nested, created ahead, implicitly, and mid-way; a non-ASCII name
  add({
    name: 'groups-nested',
    ops: [
      { op: 'group', path: '/a/b/c/d/e' },
      { op: 'dataset', ds: ds('/a/b/c/d/e/deep', 'uint16', [2], 'growable', { chunks: [3, 2] }) },
      ...batches('/a/b/c/d/e/deep', [2, 2], 1),
      { op: 'dataset', ds: ds('/x/y/z', 'float32', [], 'contiguous', { rows: 4 }) },
      { op: 'write', path: '/x/y/z' },
      { op: 'commit' },
      { op: 'group', path: '/a/b/sibling' },
      { op: 'group', path: '/détecteur/réglages' },
      { op: 'dataset', ds: ds('/a/b/sibling/late', 'vlen-str', [], 'growable', { chunks: [2] }) },
      ...batches('/a/b/sibling/late', [3, 1], 1),
      ...Array.from({ length: 30 }, (_, i): Op => ({ op: 'group', path: `/many/g${String(i).padStart(2, '0')}` })),
      { op: 'commit' },
      { op: 'dataset', ds: ds('/many/g07/data', 'int8', [4], 'growable', { chunks: [2, 4] }) },
      ...batches('/many/g07/data', [3], 1),
      ...batches('/a/b/c/d/e/deep', [5], 1),
    ],
  });

  // attributes of every kind on the root, a group and a dataset; replaced; many (continuation blocks)
  {
    const kinds = attrKinds();
    const ops: Op[] = [
      { op: 'group', path: '/meta' },
      { op: 'dataset', ds: ds('/meta/frames', 'uint16', [4], 'growable', { chunks: [2, 4] }) },
    ];
    for (const [name, attr] of kinds) ops.push({ op: 'attr', path: '/', name, attr });
    ops.push(...batches('/meta/frames', [3], 1));
    for (const [name, attr] of kinds) ops.push({ op: 'attr', path: '/meta', name, attr });
    ops.push({ op: 'commit' });
    for (const [name, attr] of kinds) ops.push({ op: 'attr', path: '/meta/frames', name, attr }, { op: 'append', path: '/meta/frames', rows: 1 });
    ops.push({ op: 'commit' });
    // replace some, with another type
    ops.push({ op: 'attr', path: '/meta/frames', name: 'int', attr: { value: 'now text', expect: { ...vstr, shape: [], value: 'now text' } } });
    ops.push({ op: 'attr', path: '/', name: 'text', attr: { value: [9, 8], expect: { dtype: '<i8', shape: [2], value: [9, 8] } } });
    ops.push(...batches('/meta/frames', [2], 1));
    // a dataset carrying 120 attributes, set over several commits
    ops.push({ op: 'dataset', ds: ds('/crowded', 'float32', [2], 'growable', { chunks: [3, 2] }) });
    for (let i = 0; i < 120; i++) {
      const v = i * 1.5;
      ops.push({ op: 'attr', path: '/crowded', name: `attr_${String(i).padStart(3, '0')}`, attr: { value: v, expect: { dtype: Number.isInteger(v) ? '<i8' : '<f8', shape: [], value: v } } });
      if (i % 25 === 24) ops.push(...batches('/crowded', [1], 1));
    }
    add({ name: 'attributes-every-kind', ops });
  }

  // many small appends, partial chunks committed and then completed (filtered chunks move)
  add({
    name: 'many-appends',
    ops: [
      { op: 'dataset', ds: ds('/plain', 'uint32', [3, 2], 'growable', { chunks: [5, 3, 2] }) },
      { op: 'dataset', ds: ds('/split', 'int16', [3, 4], 'growable', { chunks: [5, 2, 3] }) },
      { op: 'dataset', ds: ds('/zipped', 'float32', [3, 2], 'growable', { chunks: [5, 3, 2], filters: [{ id: 'shuffle' }, { id: 'deflate', level: 6 }] }) },
      { op: 'dataset', ds: ds('/names', 'vlen-str', [], 'growable', { chunks: [5] }) },
      { op: 'dataset', ds: ds('/blobs', 'vlen-bytes', [], 'growable', { chunks: [4], filters: [{ id: 'deflate', level: 1 }] }) },
      ...batches(['/plain', '/split', '/zipped', '/names', '/blobs'], Array.from({ length: 300 }, (_, i) => 1 + (i % 3 === 0 ? 1 : 0) * (i % 7)), 7),
    ],
  });

  // chunk indexes of two and three B-tree levels
  add({
    name: 'btree-two-levels',
    ops: [
      { op: 'dataset', ds: ds('/frames', 'uint8', [3], 'growable', { chunks: [1, 3] }) },
      { op: 'dataset', ds: ds('/zipped', 'uint16', [3], 'growable', { chunks: [1, 3], filters: [{ id: 'deflate', level: 1 }] }) },
      ...batches(['/frames', '/zipped'], Array.from({ length: 60 }, (_, i) => 1 + (i % 9)), 4),
    ],
  });
  add({
    name: 'btree-three-levels',
    ops: [
      { op: 'dataset', ds: ds('/samples', 'int16', [], 'growable', { chunks: [1] }) },
      { op: 'dataset', ds: ds('/checked', 'uint8', [], 'growable', { chunks: [1], filters: [{ id: 'fletcher32' }] }) },
      ...batches(['/samples', '/checked'], Array.from({ length: 40 }, (_, i) => 40 + ((i * 37) % 150)), 5),
    ],
  });
  add({
    name: 'btree-wide-chunk-rows',
    ops: [
      // 81 chunks per chunk row: a row spans two leaves; 60 rows = 4,860 chunks, three levels
      { op: 'dataset', ds: ds('/grid', 'uint8', [9, 9], 'growable', { chunks: [1, 1, 1] }) },
      { op: 'dataset', ds: ds('/grid-zipped', '>i2', [9, 9], 'growable', { chunks: [2, 1, 1], filters: [{ id: 'shuffle' }, { id: 'deflate', level: 3 }] }) },
      ...batches(['/grid', '/grid-zipped'], [1, 2, 7, 10, 3, 17, 20], 2),
    ],
  });

  // reopen mid-way (after a clean close, and as after a crash) and keep appending
  add({
    name: 'reopen-continue',
    ops: [
      { op: 'dataset', ds: ds('/raw', 'uint16', [2, 3], 'growable', { chunks: [4, 2, 3] }) },
      { op: 'dataset', ds: ds('/split', 'float32', [5], 'growable', { chunks: [3, 2] }) },
      { op: 'dataset', ds: ds('/zipped', 'int32', [3], 'growable', { chunks: [4, 3], filters: [{ id: 'shuffle' }, { id: 'deflate', level: 5 }, { id: 'fletcher32' }] }) },
      { op: 'dataset', ds: ds('/names', 'vlen-str', [], 'growable', { chunks: [3] }) },
      { op: 'dataset', ds: ds('/fixed', 'uint8', [4], 'fixed', { rows: 13, chunks: [5, 3], fill: 7 }) },
      ...batches(['/raw', '/split', '/zipped', '/names'], [2, 3], 1),
      ...batches('/fixed', [3], 1),
      { op: 'reopen', close: false },
      { op: 'attr', path: '/raw', name: 'resumed', attr: { value: 1, expect: { dtype: '<i8', shape: [], value: 1 } } },
      ...batches(['/raw', '/split', '/zipped', '/names'], [1, 4, 2], 2),
      ...batches('/fixed', [4], 1),
      { op: 'reopen', close: true },
      { op: 'group', path: '/after/reopen' },
      { op: 'dataset', ds: ds('/after/reopen/new', 'float64', [2], 'growable', { chunks: [2, 2] }) },
      ...batches(['/raw', '/split', '/zipped', '/names', '/after/reopen/new'], [5, 1], 1),
      { op: 'reopen', close: false },
      ...batches('/fixed', [3], 1), // resumed at row 10, the end of the last chunk row
      ...batches(['/raw', '/zipped'], [3], 1),
    ],
  });
  add({
    name: 'reopen-after-complete-commit',
    snapshots: true,
    ops: [
      { op: 'dataset', ds: ds('/a', 'int64', [2], 'growable', { chunks: [4, 2] }) },
      { op: 'dataset', ds: ds('/z', 'uint16', [2], 'growable', { chunks: [4, 1], filters: [{ id: 'deflate', level: 9 }] }) },
      ...batches(['/a', '/z'], [2], 1),
      ...batches(['/a', '/z'], [3], 1, () => true), // 5 rows appended; only 4 (a whole chunk row) published
      { op: 'reopen', close: false }, // the unpublished fifth row is gone; the writer resumes at 4
      ...batches(['/a', '/z'], [1, 6], 1),
      { op: 'reopen', close: false },
      ...batches(['/a', '/z'], [2], 1),
    ],
  });

  // variable-length data across many global heap collections
  add({
    name: 'vlen-heaps',
    file: { heapMaxBytes: 4096 },
    ops: [
      { op: 'dataset', ds: ds('/s', 'vlen-str', [], 'growable', { chunks: [16] }) },
      { op: 'dataset', ds: ds('/b', 'vlen-bytes', [], 'growable', { chunks: [7], filters: [{ id: 'deflate', level: 2 }] }) },
      ...batches(['/s', '/b'], [1, 30, 200, 13], 1),
      { op: 'dataset', ds: ds('/fixed-s', 'vlen-str', [], 'fixed', { rows: 9, chunks: [4] }) },
      { op: 'write', path: '/fixed-s' },
    ],
  });
  add({
    name: 'vlen-more-than-65535-objects',
    file: { heapMaxBytes: 1 << 26 }, // so the object count, not the size, splits the collections
    ops: [
      { op: 'dataset', ds: ds('/many', 'vlen-str', [], 'growable', { chunks: [4096] }) },
      { op: 'append', path: '/many', rows: 70_000 },
      { op: 'commit' },
      { op: 'append', path: '/many', rows: 5 },
    ],
  });

  // a tiny metadata region: it fills and new regions open at the end of the data, again and again
  add({
    name: 'small-meta-reserve',
    file: { metaReserve: 256, eofHeadroom: 0 },
    ops: [
      ...Array.from({ length: 12 }, (_, i): Op[] => [
        { op: 'dataset', ds: ds(`/g${i % 3}/d${i}`, i % 2 ? 'uint8' : 'float32', [3], 'growable', { chunks: [2, 3], filters: i % 4 === 3 ? [{ id: 'deflate', level: 1 }] : [] }) },
        ...batches(`/g${i % 3}/d${i}`, [1, 2], 1),
        { op: 'attr', path: `/g${i % 3}/d${i}`, name: 'i', attr: { value: i, expect: { dtype: '<i8', shape: [], value: i } } },
      ]).flat(),
      ...batches(Array.from({ length: 12 }, (_, i) => `/g${i % 3}/d${i}`), [3, 4], 1),
    ],
  });

  // chunk shapes the writer chooses itself
  add({
    name: 'default-chunks',
    ops: [
      // 434×434×3 bytes = 565,068 per frame: 7 frames fit in 4 MiB
      { op: 'dataset', ds: ds('/rgb', 'uint8', [434, 434, 3], 'growable', { expectChunks: [7, 434, 434, 3] }) },
      ...batches('/rgb', [3, 5, 1], 1),
      // 1200×1000 float32 = 4.8 MB per frame, over 4 MiB: halve the slowest axis once
      { op: 'dataset', ds: ds('/big', 'float32', [1200, 1000], 'growable', { expectChunks: [1, 600, 1000] }) },
      ...batches('/big', [1], 1),
      // vlen elements are 16-byte ids: 4 MiB / 16
      { op: 'dataset', ds: ds('/names', 'vlen-str', [], 'growable', { expectChunks: [262144] }) },
      ...batches('/names', [3], 1),
    ],
  });

  // every commit's intermediate state, checked
  add({
    name: 'snapshots-every-commit',
    snapshots: true,
    ops: [
      { op: 'dataset', ds: ds('/frames', 'uint16', [4, 3], 'growable', { chunks: [3, 4, 3] }) },
      { op: 'dataset', ds: ds('/zipped', 'float32', [4, 3], 'growable', { chunks: [3, 2, 2], filters: [{ id: 'shuffle' }, { id: 'deflate', level: 4 }] }) },
      { op: 'dataset', ds: ds('/names', 'vlen-str', [], 'growable', { chunks: [3] }) },
      { op: 'dataset', ds: ds('/fixed', '>i4', [2], 'fixed', { rows: 10, chunks: [3, 2], fill: -1 }) },
      ...batches(['/frames', '/zipped', '/names', '/fixed'], [1, 1, 2], 1),
      { op: 'group', path: '/later' },
      { op: 'attr', path: '/later', name: 'when', attr: { value: 'mid-way', expect: { ...vstr, shape: [], value: 'mid-way' } } },
      ...batches(['/frames', '/zipped', '/names', '/fixed'], [2, 3], 1, (i) => i === 0),
      { op: 'commit', publishLast: '/frames' },
      ...batches(['/frames', '/zipped', '/names'], [4, 1], 1, (i) => i === 1),
    ],
  });

  // datasets that stay empty
  add({
    name: 'empty-datasets',
    ops: [
      { op: 'dataset', ds: ds('/growable', 'float64', [2, 2], 'growable', { chunks: [2, 2, 2] }) },
      { op: 'dataset', ds: ds('/growable-vlen', 'vlen-bytes', [], 'growable', { chunks: [8] }) },
      { op: 'dataset', ds: ds('/fixed', 'uint8', [3], 'fixed', { rows: 4, chunks: [2, 3], fill: 17 }) },
      { op: 'dataset', ds: ds('/contiguous', 'int32', [3], 'contiguous', { rows: 0 }) },
      { op: 'write', path: '/contiguous' },
      { op: 'commit' },
    ],
  });

  // attributes counted by libhdf5 (the Attribute Info message) on groups and datasets, set in
  // one run and another after the file was reopened, strings of many attributes sharing one heap
  {
    const text = (v: string): AttrCase => ({ value: v, expect: { ...vstr, shape: [], value: v } });
    const ops: Op[] = [
      { op: 'group', path: '/entry/instrument' },
      { op: 'dataset', ds: ds('/entry/frames', 'uint16', [3], 'growable', { chunks: [2, 3] }) },
      ...['/', '/entry', '/entry/instrument', '/entry/frames'].flatMap((p, i): Op[] => [
        { op: 'attr', path: p, name: 'NX_class', attr: text(`NXthing${i}`) },
        { op: 'attr', path: p, name: 'count', attr: { value: i, expect: { dtype: '<i8', shape: [], value: i } } },
      ]),
      // replaced before it was ever committed: its heap element is never placed
      { op: 'attr', path: '/entry', name: 'note', attr: text('first') },
      { op: 'attr', path: '/entry', name: 'note', attr: text('second') },
      ...batches('/entry/frames', [3], 1),
      { op: 'reopen', close: false },
      { op: 'attr', path: '/entry/instrument', name: 'later', attr: text('after the reopen') },
      { op: 'attr', path: '/entry/frames', name: 'units', attr: text('counts') },
      ...batches('/entry/frames', [1], 1),
      { op: 'reopen', close: true },
      { op: 'attr', path: '/', name: 'names', attr: { value: ['a', 'bb', ''], expect: { ...vstr, shape: [3], value: ['a', 'bb', ''] } } },
      ...batches('/entry/frames', [2], 1),
    ];
    add({ name: 'attributes-counted', snapshots: true, ops });
  }

  // soft links: to datasets and groups, nested, made before and after a reopen, followed by appends
  add({
    name: 'soft-links',
    ops: [
      { op: 'dataset', ds: ds('/entry/data/data', 'int16', [2, 2], 'growable', { chunks: [3, 2, 2] }) },
      { op: 'softlink', path: '/data', target: '/entry/data/data' },
      { op: 'softlink', path: '/entry/instrument/detector/data', target: '/entry/data/data' },
      { op: 'softlink', path: '/shortcut', target: '/entry/data' },
      { op: 'softlink', path: '/nowhere', target: '/entry/not/yet' },
      ...batches('/data', [2, 4], 1),
      { op: 'reopen', close: false },
      ...batches('/entry/instrument/detector/data', [1], 1),
      { op: 'softlink', path: '/entry/latest', target: '/data' },
      { op: 'reopen', close: true },
      ...batches('/shortcut/data', [3], 1),
    ],
  });

  // compact datasets (the value in the header), replaced at later commits and after reopening
  add({
    name: 'compact-values',
    snapshots: true,
    ops: [
      { op: 'compact', ds: ds('/entry/start_time', 'S24', [], 'compact', { rows: 1 }) },
      { op: 'compact', ds: ds('/entry/grid', '>i4', [3], 'compact', { rows: 2 }) },
      { op: 'compact', ds: ds('/entry/wide', 'float64', [], 'compact', { rows: 300 }) },
      { op: 'dataset', ds: ds('/entry/frames', 'uint8', [4], 'growable', { chunks: [2, 4] }) },
      ...batches('/entry/frames', [3], 1),
      { op: 'compact', ds: ds('/entry/end_time', 'U8:30', [], 'compact', { rows: 1, seed: 1 }) },
      ...batches('/entry/frames', [1], 1),
      { op: 'compact', ds: ds('/entry/end_time', 'U8:30', [], 'compact', { rows: 1, seed: 2 }) },
      { op: 'compact', ds: ds('/entry/grid', '>i4', [3], 'compact', { rows: 5, seed: 3 }) },
      { op: 'commit' },
      { op: 'reopen', close: false },
      { op: 'compact', ds: ds('/entry/end_time', 'U8:30', [], 'compact', { rows: 1, seed: 4 }) },
      ...batches('/entry/frames', [2], 1),
    ],
  });

  // dimension scales: a growable coordinate, dimension-only scales, one scale shared by datasets
  add({
    name: 'dimension-scales',
    ops: [
      { op: 'dataset', ds: ds('/entry/data/data', 'uint16', [3, 4], 'growable', { chunks: [2, 3, 4] }) },
      { op: 'dataset', ds: ds('/entry/data/frame_name', 'vlen-str', [], 'growable', { chunks: [8] }) },
      { op: 'dataset', ds: ds('/frame', 'int64', [], 'growable', { chunks: [8] }) },
      { op: 'dataset', ds: ds('/y', 'float32', [], 'fixed', { rows: 3, chunks: [3] }) },
      { op: 'dataset', ds: ds('/x', 'float32', [], 'fixed', { rows: 4, chunks: [4] }) },
      { op: 'softlink', path: '/data', target: '/entry/data/data' },
      {
        op: 'scales',
        scales: [{ path: '/frame', name: 'frame' }, { path: '/y', name: dimensionOnlyName(3) }, { path: '/x', name: dimensionOnlyName(4) }],
        attach: [['/entry/data/data', ['/frame', '/y', '/x']], ['/entry/data/frame_name', ['/frame']]],
      },
      ...batches(['/entry/data/data', '/entry/data/frame_name', '/frame'], [2, 3], 1),
      { op: 'reopen', close: false },
      ...batches(['/entry/data/data', '/entry/data/frame_name', '/frame'], [4], 1),
    ],
  });

  // camera frames in realistic chunking, through a local file, reopened in between
  add({
    name: 'local-file-frames',
    sink: 'file',
    ops: [
      { op: 'dataset', ds: ds('/frames', 'uint8', [434, 434, 3], 'growable', { chunks: [2, 217, 217, 3] }) },
      { op: 'dataset', ds: ds('/zipped', 'uint16', [100, 80], 'growable', { chunks: [3, 50, 80], filters: [{ id: 'shuffle' }, { id: 'deflate', level: 1 }, { id: 'fletcher32' }] }) },
      { op: 'dataset', ds: ds('/names', 'vlen-str', [], 'growable', { chunks: [10] }) },
      ...batches(['/frames', '/zipped', '/names'], [3, 1], 1),
      { op: 'reopen', close: false },
      ...batches(['/frames', '/zipped', '/names'], [2, 2], 1),
      { op: 'reopen', close: true },
      ...batches(['/frames', '/zipped', '/names'], [1], 1),
    ],
  });
  return cases;
}

// ---------------------------------------------------------------------------------------------
// generated cases for the property test

const GEN_DTYPES = [...NUMERIC_DTYPES, ...BIG_ENDIAN_DTYPES, 'S1', 'S7', 'U8:5', 'vlen-str', 'vlen-bytes'];

/** A random case: small shapes, any rank, dtype, chunking, pipeline, batches, commits, reopens. */
export function randomCase(seed: number): Case {
  const r = new Rng(seed);
  const ops: Op[] = [];
  const live: DsSpec[] = [];
  const groups = ['/', '/g', '/g/h', '/k'];
  const nds = r.int(1, 3);
  const newDataset = (i: number): DsSpec => {
    const dtype = r.pick(GEN_DTYPES);
    const vlen = dtype.startsWith('vlen');
    const rank = vlen ? 1 : r.int(1, 8);
    const frame = Array.from({ length: rank - 1 }, () => r.int(1, rank > 4 ? 2 : 4));
    const chunks = [r.int(1, 5), ...frame.map((d) => r.int(1, d))];
    // (vlen elements are never left unwritten: a fixed vlen dataset would show null elements)
    const kind: DsSpec['kind'] = r.chance(0.75) ? 'growable' : !vlen && r.chance(0.5) ? 'fixed' : 'contiguous';
    const filters: Filter[] = [];
    if (kind !== 'contiguous') {
      const pool: Filter[] = r.shuffle([{ id: 'shuffle' }, { id: 'deflate', level: r.int(0, 9) }, { id: 'fletcher32' }]);
      // (the draws are made either way, so a seed names the same case as before the writer refused
      // Fletcher-32 on variable-length data)
      for (const f of pool) if (r.chance(0.4) && !(vlen && f.id === 'fletcher32')) filters.push(f);
    }
    const t = dtypeInfo(dtype);
    let fill: DsSpec['fill'];
    if (kind === 'fixed' && !vlen && r.chance(0.6)) {
      fill = Array.from(elementBytes(t, seed ^ 0x5f5f, i, 1, false));
    }
    const parent = r.pick(groups);
    const rows = kind === 'contiguous' ? r.int(0, 6) : kind === 'fixed' ? r.int(1, 12) : undefined;
    if (kind === 'fixed') chunks[0] = Math.min(chunks[0]!, rows!);
    return {
      path: `${parent === '/' ? '' : parent}/d${i}`, dtype, frame, kind, seed: (seed * 7919 + i) | 0,
      ...(rows !== undefined ? { rows } : {}),
      ...(kind !== 'contiguous' ? { chunks } : {}),
      ...(filters.length ? { filters } : {}),
      ...(fill ? { fill } : {}),
    };
  };
  const addDataset = (i: number) => {
    const s = newDataset(i);
    ops.push({ op: 'dataset', ds: s });
    if (s.kind === 'contiguous') ops.push({ op: 'write', path: s.path });
    live.push(s);
  };
  for (let i = 0; i < nds; i++) addDataset(i);
  const appended = new Map<string, number>();
  const steps = r.int(2, 12);
  let next = nds;
  for (let step = 0; step < steps; step++) {
    for (const s of live) {
      if (s.kind === 'contiguous' || r.chance(0.2)) continue;
      const have = appended.get(s.path) ?? 0;
      const room = s.kind === 'fixed' ? s.rows! - have : 9;
      if (room <= 0) continue;
      const n = r.int(1, Math.min(room, r.chance(0.2) ? 9 : 3));
      ops.push({ op: 'append', path: s.path, rows: n });
      appended.set(s.path, have + n);
    }
    if (r.chance(0.15)) {
      const owner = r.pick([...groups, ...live.map((s) => s.path)]);
      const [name, attr] = r.pick(attrKinds());
      ops.push({ op: 'attr', path: owner, name, attr });
    }
    if (r.chance(0.1) && next < 5) addDataset(next++);
    if (r.chance(0.6)) {
      ops.push({ op: 'commit', complete: r.chance(0.15) });
      if (r.chance(0.2)) ops.push({ op: 'reopen', close: r.chance(0.5) });
    }
  }
  // the groups used as parents exist even when nothing was put in them
  ops.unshift(...groups.filter((g) => g !== '/').map((g): Op => ({ op: 'group', path: g })));
  // (an abandoning reopen after a complete commit loses unpublished rows: the model follows, and
  // the generator's counts only ever overestimate, so fixed datasets never overflow)
  const file: FileOptions = {};
  if (r.chance(0.3)) file.metaReserve = r.pick([64, 512, 2048]);
  if (r.chance(0.3)) file.eofHeadroom = r.pick([0, 1000]);
  if (r.chance(0.2)) file.heapMaxBytes = 4096;
  return { name: `random-${seed}`, ops, clampFixed: true, file };
}

export { filterName };
