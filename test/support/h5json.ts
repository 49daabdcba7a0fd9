/**
 * The one description of an HDF5 file that both oracles produce — h5py (HDF5 1.10.8, via
 * test/interop/support/h5read.py) and h5wasm (HDF5 2.0, test/support/h5wasm.ts) — so a test
 * compares fur's output with either, or the two with each other, through one helper.
 *
 * Values are flattened in C order. Numeric data is carried as little-endian bytes (base64)
 * so integers of every width and floats compare exactly, NaN included.
 */
import assert from 'node:assert/strict';

export type H5Value =
  | { kind: 'bytes'; base64: string }
  | { kind: 'strings'; items: string[] }
  | { kind: 'vlen-bytes'; items: string[] }
  | { kind: 'vlen'; base: string; items: string[] }
  | { kind: 'unsupported'; dtype: string };

export interface H5StringInfo {
  encoding: 'ascii' | 'utf-8';
  vlen: boolean;
}

/** A numpy dtype string ('<u2', '|u1', '>i4', '|S8', '|O') and what it leaves unsaid. */
export interface H5Type {
  dtype: string;
  /** Present for string types. */
  string?: H5StringInfo;
  /** Present for variable-length sequences: the element dtype ('|u1' for bytes). */
  base?: string;
}

/** Scalars are numbers; integers beyond 2^53 are decimal strings; non-finite floats are 'NaN', 'Infinity', '-Infinity'. */
export type H5Scalar = number | string | boolean;

export interface H5Attr extends H5Type {
  shape: number[] | null;
  /** Scalar for a scalar attribute, flat C-order list otherwise, null when empty. */
  value: H5Scalar | H5Scalar[] | null;
}

export interface H5Filter {
  id: number;
  cd_values: number[];
}

export interface H5Group {
  kind: 'group';
  members: string[];
  attrs: Record<string, H5Attr>;
}

export interface H5Dataset extends H5Type {
  kind: 'dataset';
  shape: number[] | null;
  /** null entries are unlimited dimensions. */
  maxshape: (number | null)[] | null;
  chunks: number[] | null;
  filters: H5Filter[];
  compression: string | null;
  compression_opts: unknown;
  shuffle: boolean;
  fletcher32: boolean;
  /** The half-open row range the value covers, when the read was limited to rows. */
  rows?: [number, number];
  value?: H5Value;
  attrs: Record<string, H5Attr>;
}

export interface H5SoftLink {
  kind: 'softlink';
  target: string;
}
export interface H5ExternalLink {
  kind: 'extlink';
  filename: string;
  path: string;
}
export interface H5HardLink {
  kind: 'hardlink';
  target: string;
}
export interface H5NamedType {
  kind: 'datatype';
  dtype: string;
}

export type H5Object = H5Group | H5Dataset | H5SoftLink | H5ExternalLink | H5HardLink | H5NamedType;

export interface H5Doc {
  /** Which library produced the description; never compared. */
  reader: string;
  objects: Record<string, H5Object>;
}

export interface ReadOptions {
  /** Open for SWMR reading. */
  swmr?: boolean;
  /** Describe only this dataset. */
  dataset?: string;
  /** Values of rows [start, end) of the first dimension only. */
  rows?: [number, number];
  /** Leave values out (structure and attributes only). */
  values?: boolean;
}

/** Filter ids in the pipeline (1 deflate, 2 shuffle, 3 fletcher32, 32015 zstd, ...). */
export const FILTER = { deflate: 1, shuffle: 2, fletcher32: 3, szip: 4, nbit: 5, scaleoffset: 6, lzf: 32000, zstd: 32015 } as const;

/** The path `path` names once soft links along it are followed (`path` itself when none). */
export function resolvePath(doc: H5Doc, path: string): string {
  let p = normPath(path);
  for (let hops = 0; hops < 16 && doc.objects[p]?.kind !== 'dataset' && doc.objects[p]?.kind !== 'group'; hops++) {
    const parts = p.split('/').filter(Boolean);
    let next: string | undefined;
    for (let i = parts.length; i > 0 && next === undefined; i--) {
      const prefix = '/' + parts.slice(0, i).join('/');
      const o = doc.objects[prefix];
      if (o?.kind === 'softlink') {
        const target = o.target.startsWith('/') ? o.target : `${prefix.slice(0, prefix.lastIndexOf('/'))}/${o.target}`;
        next = normPath([target, ...parts.slice(i)].join('/'));
      }
    }
    if (next === undefined) break;
    p = next;
  }
  return p;
}

/** The dataset at `path`, soft links followed. */
export function dataset(doc: H5Doc, path: string): H5Dataset {
  const p = resolvePath(doc, path);
  const o = doc.objects[p];
  if (!o) throw new Error(`${p}: no such object (have ${Object.keys(doc.objects).join(', ')})`);
  if (o.kind !== 'dataset') throw new Error(`${p}: is a ${o.kind}, not a dataset`);
  return o;
}

/** A per-frame dataset (frame_name, frame_attrs, …): beside the frames, wherever the layout puts them (/data may be a link). */
export function perFrame(doc: H5Doc, name: string, frames = '/data'): H5Dataset {
  const at = resolvePath(doc, frames);
  return dataset(doc, `${at.slice(0, at.lastIndexOf('/'))}/${name}`);
}

/** The raw little-endian bytes of a numeric dataset's value. */
export function valueBytes(ds: H5Dataset): Uint8Array {
  const v = ds.value;
  if (!v || v.kind !== 'bytes') throw new Error(`dataset value is ${v ? v.kind : 'absent'}, not bytes`);
  return new Uint8Array(Buffer.from(v.base64, 'base64'));
}

/** Strings of a string dataset. */
export function valueStrings(ds: H5Dataset): string[] {
  const v = ds.value;
  if (!v || v.kind !== 'strings') throw new Error(`dataset value is ${v ? v.kind : 'absent'}, not strings`);
  return v.items;
}

/** Items of a vlen uint8 dataset. */
export function valueVlenBytes(ds: H5Dataset): Uint8Array[] {
  const v = ds.value;
  if (!v || v.kind !== 'vlen-bytes') throw new Error(`dataset value is ${v ? v.kind : 'absent'}, not vlen-bytes`);
  return v.items.map((s) => new Uint8Array(Buffer.from(s, 'base64')));
}

export function normPath(p: string): string {
  return '/' + p.split('/').filter(Boolean).join('/');
}

export interface CompareOptions {
  /** Also compare values (default true). Off compares structure, types, filters and attributes. */
  values?: boolean;
  /** Paths (or prefixes ending in '/') to leave out on both sides. */
  ignore?: string[];
}

/**
 * Asserts that two descriptions (h5py vs h5wasm, or an oracle vs what a test expects)
 * describe the same file: same objects, types, shapes, chunking, filters, attributes and
 * values. On a difference it names the object and field, and for byte values the first
 * differing byte, instead of dumping two large JSON trees.
 */
export function assertSameStructure(a: H5Doc, b: H5Doc, opts: CompareOptions = {}): void {
  const values = opts.values ?? true;
  const skip = (p: string) => (opts.ignore ?? []).some((i) => (i.endsWith('/') ? p.startsWith(i) : p === normPath(i)));
  const pa = Object.keys(a.objects).filter((p) => !skip(p)).sort();
  const pb = Object.keys(b.objects).filter((p) => !skip(p)).sort();
  const onlyA = pa.filter((p) => !(p in b.objects));
  const onlyB = pb.filter((p) => !(p in a.objects));
  if (onlyA.length || onlyB.length) {
    assert.fail(`objects differ: only in ${a.reader}: [${onlyA.join(', ')}]; only in ${b.reader}: [${onlyB.join(', ')}]`);
  }
  for (const p of pa) {
    const x = a.objects[p]!;
    const y = b.objects[p]!;
    const where = `${p} (${a.reader} vs ${b.reader})`;
    assert.equal(x.kind, y.kind, `${where}: kind`);
    if (x.kind === 'dataset' && y.kind === 'dataset') {
      const { value: vx, attrs: ax, ...restX } = x;
      const { value: vy, attrs: ay, ...restY } = y;
      assert.deepEqual(restX, restY, `${where}: dataset header`);
      assertSameAttrs(ax, ay, where);
      if (values) assertSameValue(vx, vy, where);
    } else if (x.kind === 'group' && y.kind === 'group') {
      assert.deepEqual(x.members, y.members, `${where}: members`);
      assertSameAttrs(x.attrs, y.attrs, where);
    } else {
      assert.deepEqual(x, y, where);
    }
  }
}

function assertSameAttrs(x: Record<string, H5Attr>, y: Record<string, H5Attr>, where: string): void {
  assert.deepEqual(Object.keys(x).sort(), Object.keys(y).sort(), `${where}: attribute names`);
  for (const k of Object.keys(x)) assert.deepEqual(x[k], y[k], `${where}: attribute ${k}`);
}

function assertSameValue(x: H5Value | undefined, y: H5Value | undefined, where: string): void {
  if (x === undefined || y === undefined) {
    assert.equal(x === undefined, y === undefined, `${where}: value present on one side only`);
    return;
  }
  assert.equal(x.kind, y.kind, `${where}: value kind`);
  if (x.kind === 'bytes' && y.kind === 'bytes') {
    if (x.base64 === y.base64) return;
    const bx = Buffer.from(x.base64, 'base64');
    const by = Buffer.from(y.base64, 'base64');
    let i = 0;
    while (i < bx.length && i < by.length && bx[i] === by[i]) i++;
    assert.fail(`${where}: values differ at byte ${i} (lengths ${bx.length} and ${by.length}; ${bx[i]} vs ${by[i]})`);
  }
  if ('items' in x && 'items' in y) {
    assert.equal(x.items.length, y.items.length, `${where}: item count`);
    for (let i = 0; i < x.items.length; i++) {
      if (x.items[i] !== y.items[i]) {
        assert.fail(`${where}: item ${i} differs: ${JSON.stringify(x.items[i])} vs ${JSON.stringify(y.items[i])}`);
      }
    }
  }
  assert.deepEqual(x, y, `${where}: value`);
}
