/**
 * h5wasm (HDF5 2.0) as an oracle for every dtype fur writes, float16 included.
 *
 * The shared reader (test/support/h5wasm.ts) goes through h5wasm's typed-array conversion,
 * which has no 16-bit float. This one asks the library for the raw element bytes instead
 * (HDF5 converts them to the machine's byte order, as it does for any numeric type), so values
 * of every numeric type compare as bytes; strings and vlen sequences come through h5wasm's own
 * decoding. It prints the same description (H5Doc), so the same comparison applies, and the
 * tests check it against the shared reader on files without float16.
 */
import fs from 'node:fs';
import { resolve } from 'node:path';
import h5wasm from 'h5wasm/node';
import type { Dataset, Group, Metadata } from 'h5wasm/node';
import { referenceAttr, typeOf, type H5Attr, type H5Dataset, type H5Doc, type H5Object, type H5Scalar, type H5Value } from '../support/h5wasm.js';
import { dtypeInfo, scalarOf } from './values.js';

type Module = Awaited<typeof h5wasm.ready>;
let moduleP: Promise<Module> | undefined;
const ready = () => (moduleP ??= h5wasm.ready);

const UNLIMITED_FROM = 2 ** 63;

/** Runs `fn` with HDF5's diagnostics (printed to fds 1 and 2 by the wasm build) collected. */
function withDiagnostics<T>(fn: () => T): { result?: T; error?: unknown; diag: string } {
  const chunks: string[] = [];
  const original = fs.writeSync;
  (fs as { writeSync: unknown }).writeSync = (fd: number, buf: unknown, ...rest: unknown[]): number => {
    if (fd !== 1 && fd !== 2) return (original as (...a: unknown[]) => number)(fd, buf, ...rest);
    if (typeof buf === 'string') { chunks.push(buf); return Buffer.byteLength(buf); }
    const v = buf as Uint8Array;
    const off = typeof rest[0] === 'number' ? rest[0] : 0;
    const len = typeof rest[1] === 'number' ? rest[1] : v.byteLength - off;
    chunks.push(Buffer.from(v.buffer, v.byteOffset + off, len).toString('utf8'));
    return len;
  };
  try {
    return { result: fn(), diag: chunks.join('') };
  } catch (error) {
    return { error, diag: chunks.join('') };
  } finally {
    (fs as { writeSync: unknown }).writeSync = original;
  }
}

/** Describe a file as HDF5 2.0 sees it; throws if it does not open or HDF5 reports any error. */
export async function wasmDescribe(path: string): Promise<H5Doc> {
  const M = await ready();
  const { result, error, diag } = withDiagnostics(() => {
    const f = new h5wasm.File(resolve(path), 'r');
    if (typeof f.file_id !== 'bigint' || f.file_id < 0n) throw new Error(`h5wasm could not open ${path}`);
    try {
      const objects: Record<string, H5Object> = {};
      walk(M, f, f.file_id, '/', objects);
      return objects;
    } finally {
      f.close();
    }
  });
  if (error || /HDF5-DIAG|error/i.test(diag)) {
    const msg = error instanceof Error ? error.message : String(error ?? 'HDF5 reported errors');
    throw new Error(`h5wasm (HDF5 2.0) on ${path}: ${msg}\n${diag.split('\n').slice(-12).join('\n')}`);
  }
  return { reader: 'h5wasm raw (HDF5 2.0)', objects: result! };
}

function walk(M: Module, g: Group, fileId: bigint, path: string, out: Record<string, H5Object>): void {
  const members = [...g.keys()].sort();
  out[path] = { kind: 'group', members, attrs: attrsOf(M, fileId, path, g) };
  for (const name of members) {
    const child = path === '/' ? `/${name}` : `${path}/${name}`;
    // a soft link is reported as one (its target is an object of its own path), as h5py does
    const target = g.get_link(child);
    if (typeof target === 'string') { out[child] = { kind: 'softlink', target }; continue; }
    const obj = g.get(child);
    if (obj instanceof h5wasm.Group) walk(M, obj, fileId, child, out);
    else if (obj instanceof h5wasm.Dataset) out[child] = describeDataset(M, fileId, child, obj);
    else throw new Error(`${child}: neither group nor dataset`);
  }
}

function rawBytes(M: Module, n: number, read: (ptr: bigint) => void): Uint8Array {
  const ptr = M._malloc(Math.max(1, n));
  try {
    read(BigInt(ptr));
    return M.HEAPU8.slice(ptr, ptr + n);
  } finally {
    M._free(ptr);
  }
}

function describeDataset(M: Module, fileId: bigint, path: string, d: Dataset): H5Dataset {
  const m = d.metadata;
  const t = typeOf(m);
  const filters = d.filters.map((f) => ({ id: f.id, cd_values: [...f.cd_values] }));
  const ids = filters.map((f) => f.id);
  const shape = m.shape === null ? null : [...m.shape];
  const count = (shape ?? []).reduce((a, b) => a * b, 1);
  let value: H5Value;
  if (m.type === 0 || m.type === 1) {
    const bytes = count === 0 ? new Uint8Array(0) : rawBytes(M, count * m.size, (p) => M.get_dataset_data(fileId, path, null, null, null, p));
    value = { kind: 'bytes', base64: Buffer.from(bytes).toString('base64') };
  } else {
    const raw = count === 0 ? [] : d.value;
    const items = (Array.isArray(raw) ? raw : [raw]) as unknown[];
    if (m.type === 3) value = { kind: 'strings', items: items.map((s) => String(s).replace(/\0+$/, '')) };
    else if (m.type === 9 && t.base === '|u1') {
      value = { kind: 'vlen-bytes', items: items.map((x) => Buffer.from(x as Uint8Array).toString('base64')) };
    } else value = { kind: 'unsupported', dtype: t.dtype };
  }
  return {
    kind: 'dataset',
    ...t,
    shape,
    maxshape: m.maxshape === null ? null : m.maxshape.map((x) => (x >= UNLIMITED_FROM ? null : x)),
    chunks: m.chunks === null ? null : [...m.chunks],
    filters,
    compression: ids.includes(1) ? 'gzip' : null,
    compression_opts: ids.includes(1) ? filters.find((f) => f.id === 1)!.cd_values[0] ?? null : null,
    shuffle: ids.includes(2),
    fletcher32: ids.includes(3),
    value,
    attrs: attrsOf(M, fileId, path, d),
  };
}

function attrsOf(M: Module, fileId: bigint, path: string, obj: { attrs: Record<string, { metadata: Metadata; value: unknown }> }): Record<string, H5Attr> {
  const out: Record<string, H5Attr> = {};
  const attrs = obj.attrs;
  for (const name of Object.keys(attrs).sort()) {
    const a = attrs[name]!;
    const m = a.metadata;
    const ref = referenceAttr(M, fileId, m, () => a.value);
    if (ref) { out[name] = ref; continue; }
    const t = typeOf(m);
    const shape = m.shape === null ? null : [...m.shape];
    const count = (shape ?? []).reduce((x, y) => x * y, 1);
    let items: H5Scalar[];
    if (m.type === 0 || m.type === 1) {
      const bytes = count === 0 ? new Uint8Array(0) : rawBytes(M, count * m.size, (p) => M.get_attribute_data(fileId, path, name, p));
      // HDF5 hands the bytes over in the machine's order: describe them as little-endian
      const le = dtypeInfo(t.dtype.replace(/^>/, '<'));
      items = Array.from({ length: count }, (_, i) => scalarOf(le, bytes, i * m.size));
    } else {
      const raw = a.value;
      items = (Array.isArray(raw) ? raw : [raw]).map((s) => String(s).replace(/\0+$/, ''));
    }
    out[name] = { ...t, shape, value: shape === null ? null : shape.length === 0 ? items[0]! : items };
  }
  return out;
}
