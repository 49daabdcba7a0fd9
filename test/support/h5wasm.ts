/**
 * The npm-tier oracle: h5wasm (the HDF5 2.0 C library compiled to WebAssembly), so every
 * unit test can check that fur's files open in the newest, strictest HDF5 without any
 * system package. It describes a file in the same structure as the h5py oracle
 * (test/support/h5json.ts), so one `assertSameStructure` compares them.
 *
 * h5wasm's node build mounts the host file system directly (Emscripten NODERAWFS): it opens
 * real paths, so a path is read in place and bytes go through a temporary file.
 */
import fs, { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import h5wasm from 'h5wasm/node';
import type { Attribute, Dataset, Group, Metadata } from 'h5wasm/node';
import type { H5Attr, H5Dataset, H5Doc, H5Object, H5Scalar, H5Type, H5Value, ReadOptions } from './h5json.js';
import { normPath } from './h5json.js';

export * from './h5json.js';

type Module = Awaited<typeof h5wasm.ready>;
let moduleP: Promise<Module> | undefined;

/** Waits for the wasm module once; every reader call goes through here. */
export function h5wasmReady(): Promise<Module> {
  moduleP ??= h5wasm.ready;
  return moduleP;
}

/** The `reader` label of h5wasm descriptions (h5wasm 0.10 bundles HDF5 2.0.0). */
export const H5WASM_READER = 'h5wasm (HDF5 2.0)';

const UNLIMITED_FROM = 2 ** 63; // H5S_UNLIMITED arrives as 2^64 - 1 rounded to a double
const SAFE = Number.MAX_SAFE_INTEGER + 1; // python side uses |v| <= 2**53

/**
 * Describes an HDF5 file (a path, or the file's bytes) as h5wasm/HDF5 2.0 sees it.
 * Throws what HDF5 throws when the file does not open or an object does not read.
 */
export async function h5wasmRead(file: string | Uint8Array, opts: ReadOptions = {}): Promise<H5Doc> {
  const M = await h5wasmReady();
  let tmp: string | undefined;
  let path: string;
  if (typeof file === 'string') {
    path = resolve(file);
  } else {
    tmp = mkdtempSync(join(tmpdir(), 'fur-h5wasm-'));
    path = join(tmp, 'file.h5');
    writeFileSync(path, file);
  }
  const diag = captureOutput();
  try {
    let f: InstanceType<typeof h5wasm.File>;
    try {
      f = new h5wasm.File(path, opts.swmr ? 'Sr' : 'r');
    } catch (e) {
      throw new Error(`h5wasm could not open ${typeof file === 'string' ? file : '<bytes>'}: ${errText(e)}`, { cause: e });
    }
    if (typeof f.file_id !== 'bigint' || f.file_id < 0n) {
      throw new Error(`h5wasm could not open ${typeof file === 'string' ? file : '<bytes>'} (file id ${String(f.file_id)})`);
    }
    try {
      const objects: Record<string, H5Object> = {};
      const withValues = opts.values ?? true;
      if (opts.dataset) {
        const p = normPath(opts.dataset);
        const d = f.get(p);
        if (!d || !(d instanceof h5wasm.Dataset)) throw new Error(`${p} is not a dataset`);
        objects[p] = describeDataset(M, d, opts.rows, withValues);
      } else {
        walk(M, f, '/', objects, opts.rows, withValues, 0);
      }
      // h5wasm ignores the status of H5Dread and returns whatever was in the buffer, so a
      // chunk that fails to decode only shows as HDF5's printed error stack: treat any as fatal
      if (/HDF5-DIAG/.test(diag.text())) throw new Error(`HDF5 reported an error while reading ${typeof file === 'string' ? file : '<bytes>'}`);
      return { reader: H5WASM_READER, objects };
    } finally {
      f.close();
    }
  } catch (e) {
    const text = diag.text();
    if (e instanceof Error && text) e.message += `\nHDF5 2.0 says:\n${summarizeDiag(text)}`;
    throw e;
  } finally {
    diag.restore();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * HDF5 prints its error stack (HDF5-DIAG) to fd 2 (h5wasm's node build writes it with
 * fs.writeSync), and the thrown error says little. Everything between `h5wasmReady` and
 * the end of a read is synchronous, so what is written to fds 1 and 2 meanwhile is exactly
 * this read's diagnostics: keep it for the error instead of scrolling it through the log.
 */
function captureOutput(): { text(): string; restore(): void } {
  const chunks: string[] = [];
  const original = fs.writeSync;
  const patched = function (this: unknown, fd: number, buf: unknown, ...rest: unknown[]): number {
    if (fd !== 1 && fd !== 2) return (original as (...a: unknown[]) => number).call(fs, fd, buf, ...rest);
    if (typeof buf === 'string') {
      chunks.push(buf);
      return Buffer.byteLength(buf);
    }
    const view = buf as Uint8Array;
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    const length = typeof rest[1] === 'number' ? rest[1] : view.byteLength - offset;
    chunks.push(Buffer.from(view.buffer, view.byteOffset + offset, length).toString('utf8'));
    return length;
  };
  fs.writeSync = patched as typeof fs.writeSync;
  return {
    text: () => chunks.join(''),
    restore() {
      fs.writeSync = original;
    },
  };
}

/** The innermost lines of an HDF5 error stack: where it failed and why. */
function summarizeDiag(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const frames = lines.filter((l) => /^#\d+:/.test(l)).map((l) => l.replace(/^#\d+: \S+ line \d+ in /, ''));
  return (frames.length ? frames.slice(-3) : lines.slice(-6)).join('\n');
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function walk(M: Module, g: Group, path: string, out: Record<string, H5Object>, rows: [number, number] | undefined, values: boolean, depth: number): void {
  // h5wasm has no notion of object identity, so a hard-link cycle would recurse forever.
  if (depth > 64) throw new Error(`${path}: group nesting deeper than 64 (a hard-link cycle?)`);
  const members = [...g.keys()].sort();
  out[path] = { kind: 'group', members, attrs: describeAttrs(M, g) };
  for (const name of members) {
    const child = path === '/' ? `/${name}` : `${path}/${name}`;
    // a soft link first: asking for the type of a dangling one is an HDF5 error
    const target = g.get_link(child);
    if (typeof target === 'string') {
      out[child] = { kind: 'softlink', target };
      continue;
    }
    const type = g.get_type(child);
    if (type === M.H5G_UDLINK) {
      const { filename, obj_path } = g.get_external_link(child);
      out[child] = { kind: 'extlink', filename, path: obj_path };
      continue;
    }
    const obj = g.get(child);
    if (obj instanceof h5wasm.Group) walk(M, obj, child, out, rows, values, depth + 1);
    else if (obj instanceof h5wasm.Dataset) out[child] = describeDataset(M, obj, rows, values);
    else if (obj instanceof h5wasm.Datatype) out[child] = { kind: 'datatype', dtype: typeOf(obj.metadata).dtype };
    else throw new Error(`${child}: object of unknown type ${type}`);
  }
}

/**
 * Attributes holding object references (a dimension scale's DIMENSION_LIST and REFERENCE_LIST),
 * described alike by every oracle: a sequence of references as the paths it names, joined by
 * ','; a compound as its members' names and types, its value not compared (h5wasm reads no
 * reference inside a compound). Undefined for any other attribute.
 */
export function referenceAttr(M: Module, fileId: bigint, m: Metadata, value: () => unknown): H5Attr | undefined {
  const shape = m.shape === null ? null : [...m.shape];
  const path = (r: unknown) => String(M.get_referenced_name(fileId, (r as { ref_data: Uint8Array }).ref_data, true));
  if (m.type === 9 && m.vlen_type?.type === 7) {
    const raw = value() as unknown[][];
    return { dtype: '|O', base: 'ref', shape, value: raw.map((refs) => [...refs].map(path).join(',')) };
  }
  if (m.type === 7) return { dtype: 'ref', shape, value: null };
  if (m.type === 6) {
    const members = m.compound_type!.members.map((x) => `${x.name}:${x.type === 7 ? 'ref' : typeOf(x).dtype}`);
    return { dtype: `compound(${members.join(',')})`, shape, value: null };
  }
  return undefined;
}

/** numpy's dtype string for an HDF5 type, as h5py would name it. */
export function typeOf(m: Metadata): H5Type {
  const order = m.size === 1 ? '|' : m.littleEndian ? '<' : '>';
  switch (m.type) {
    case 0:
      return { dtype: `${order}${m.signed ? 'i' : 'u'}${m.size}` };
    case 1:
      return { dtype: `${order}f${m.size}` };
    case 3: {
      const encoding = m.cset === 1 ? 'utf-8' : 'ascii';
      return m.vlen ? { dtype: '|O', string: { encoding, vlen: true } } : { dtype: `|S${m.size}`, string: { encoding, vlen: false } };
    }
    case 9:
      return { dtype: '|O', base: m.vlen_type ? typeOf(m.vlen_type).dtype : 'unknown' };
    default:
      return { dtype: `unsupported:${m.type}` };
  }
}

const FILTER_NAMES: Record<number, string> = { 1: 'gzip', 4: 'szip', 32000: 'lzf' };

function describeDataset(M: Module, d: Dataset, rows: [number, number] | undefined, values: boolean): H5Dataset {
  const m = d.metadata;
  const filters = d.filters.map((f) => ({ id: f.id, cd_values: [...f.cd_values] }));
  const ids = filters.map((f) => f.id);
  const compId = [1, 4, 32000].find((id) => ids.includes(id));
  const out: Omit<H5Dataset, 'attrs'> & { attrs?: H5Dataset['attrs'] } = {
    kind: 'dataset',
    ...typeOf(m),
    shape: m.shape === null ? null : [...m.shape],
    maxshape: m.maxshape === null ? null : m.maxshape.map((x) => (x >= UNLIMITED_FROM ? null : x)),
    chunks: m.chunks === null ? null : [...m.chunks],
    filters,
    // h5py's Dataset.compression / compression_opts, derived the way h5py derives them
    compression: compId === undefined ? null : FILTER_NAMES[compId]!,
    compression_opts: compId === 1 ? (filters.find((f) => f.id === 1)!.cd_values[0] ?? null) : compId === 4 ? filters.find((f) => f.id === 4)!.cd_values : null,
    shuffle: ids.includes(2),
    fletcher32: ids.includes(3),
  };
  if (values && m.shape !== null) {
    let raw: unknown;
    let count = m.shape.reduce((a, b) => a * b, 1);
    if (rows && m.shape.length > 0) {
      const n = m.shape[0]!;
      const a = Math.max(0, Math.min(rows[0], n));
      const b = Math.max(a, Math.min(rows[1], n));
      out.rows = [a, b];
      count = (b - a) * m.shape.slice(1).reduce((x, y) => x * y, 1);
      raw = count === 0 ? [] : d.slice([[a, b]]);
    } else {
      raw = count === 0 ? [] : d.value;
    }
    out.value = describeValue(raw, m, count);
  }
  // attributes last, as in the h5py description, so printed documents line up
  return { ...out, attrs: describeAttrs(M, d) };
}

function flatDeep(xs: unknown[]): unknown[] {
  const out: unknown[] = [];
  const rec = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(rec);
    else out.push(v);
  };
  rec(xs);
  return out;
}

function flatItems(raw: unknown, count: number): unknown[] {
  if (Array.isArray(raw)) return flatDeep(raw);
  if (count === 1 || typeof raw === 'string' || ArrayBuffer.isView(raw)) return [raw];
  return [raw];
}

function describeValue(raw: unknown, m: Metadata, count: number): H5Value {
  const t = typeOf(m);
  if (m.type === 0 || m.type === 1) return { kind: 'bytes', base64: numericBytes(raw, m, count).toString('base64') };
  if (m.type === 3) return { kind: 'strings', items: flatItems(raw, count).map((s) => stripNul(String(s))) };
  if (m.type === 9 && m.vlen_type) {
    const items = (Array.isArray(raw) ? raw : [raw]).map((x) => numericBytes(x, m.vlen_type!, -1).toString('base64'));
    if (t.base === '|u1') return { kind: 'vlen-bytes', items };
    if (m.vlen_type.type === 0 || m.vlen_type.type === 1) return { kind: 'vlen', base: t.base!, items };
  }
  return { kind: 'unsupported', dtype: t.dtype };
}

function stripNul(s: string): string {
  return s.replace(/\0+$/, '');
}

/** Little-endian bytes of numeric data h5wasm returned as a typed array, array or scalar. */
function numericBytes(raw: unknown, m: Metadata, count: number): Buffer {
  if (ArrayBuffer.isView(raw)) {
    // h5wasm converts to the machine's order, and node runs little-endian here
    return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  const items = Array.isArray(raw) ? (flatDeep(raw)) : [raw];
  if (count >= 0 && items.length !== count) throw new Error(`expected ${count} values, h5wasm returned ${items.length}`);
  const buf = Buffer.alloc(items.length * m.size);
  items.forEach((v, i) => {
    const o = i * m.size;
    if (m.type === 1) {
      if (m.size === 4) buf.writeFloatLE(Number(v), o);
      else if (m.size === 8) buf.writeDoubleLE(Number(v), o);
      else throw new Error(`float of size ${m.size}`);
    } else if (m.size === 8) {
      if (m.signed) buf.writeBigInt64LE(BigInt(v as number | bigint), o);
      else buf.writeBigUInt64LE(BigInt(v as number | bigint), o);
    } else if (m.signed) buf.writeIntLE(Number(v), o, m.size);
    else buf.writeUIntLE(Number(v), o, m.size);
  });
  return buf;
}

function describeAttrs(M: Module, obj: { attrs: Record<string, Attribute>; file_id: bigint }): Record<string, H5Attr> {
  const out: Record<string, H5Attr> = {};
  const attrs = obj.attrs;
  for (const name of Object.keys(attrs).sort()) {
    const a = attrs[name]!;
    const m = a.metadata;
    const ref = referenceAttr(M, obj.file_id, m, () => a.value);
    if (ref) { out[name] = ref; continue; }
    const t = typeOf(m);
    const shape = m.shape === null ? null : [...m.shape];
    let value: H5Attr['value'];
    if (shape === null) value = null;
    else {
      const raw = a.value;
      const conv = (v: unknown): H5Scalar => (t.string ? stripNul(String(v)) : scalar(v));
      if (raw === null) value = null;
      else if (shape.length === 0) value = conv(ArrayBuffer.isView(raw) ? (raw as unknown as ArrayLike<unknown>)[0] : Array.isArray(raw) ? raw[0] : raw);
      else {
        const items: unknown[] = ArrayBuffer.isView(raw) ? Array.from(raw as unknown as ArrayLike<unknown>) : Array.isArray(raw) ? flatDeep(raw) : [raw];
        value = items.map(conv);
      }
    }
    out[name] = { ...t, shape, value };
  }
  return out;
}

function scalar(v: unknown): H5Scalar {
  if (typeof v === 'bigint') return v >= -SAFE && v <= SAFE ? Number(v) : v.toString();
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    return v;
  }
  return String(v);
}
