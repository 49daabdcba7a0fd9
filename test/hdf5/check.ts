/** Checks shared by the writer's test tiers: fur's own reader against a case's expectation. */
import assert from 'node:assert/strict';
import { H5File, MemorySink } from '../../src/hdf5/index.js';
import { MSG, readHeader } from '../../src/hdf5/object-header.js';
import type { H5Attr } from '../support/h5json.js';
import type { Expected } from './cases.js';
import { Rng } from './values.js';

export function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  if (got.length === want.length && Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer, want.byteOffset, want.byteLength)) === 0) return;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  assert.fail(`${what}: ${got.length} bytes vs ${want.length} expected; first difference at byte ${i} (${got[i]} vs ${want[i]})`);
}

/** Reopen the file with fur's reader and compare objects, shapes, values, partial reads, attribute names. */
export async function checkWithFurReader(bytes: Uint8Array, exp: Expected, label: string): Promise<void> {
  const sink = new MemorySink();
  await sink.write(0, bytes);
  const f = await H5File.open(sink);
  assert.deepEqual([...f.paths(), ...f.softLinks().map((l) => l.path)].sort(), Object.keys(exp.doc.objects).sort(), `${label}: objects`);
  for (const l of f.softLinks()) assert.deepEqual({ kind: 'softlink', target: l.target }, exp.doc.objects[l.path], `${label} ${l.path}: soft link`);
  const rng = new Rng(bytes.length);
  for (const d of exp.datasets) {
    const compact = f.compact(d.path);
    if (compact) {
      assert.deepEqual(compact.shape, d.shape, `${label} ${d.path}: shape`);
      assertBytes(compact.data, d.raw!, `${label} ${d.path}: compact value`);
      continue;
    }
    const ds = f.dataset(d.path);
    assert.deepEqual(ds.shape, d.shape, `${label} ${d.path}: shape`);
    const rows = d.shape[0]!;
    if (d.raw) {
      assertBytes(await ds.read(), d.raw, `${label} ${d.path}: fur's reader`);
      const rowBytes = rows ? d.raw.length / rows : 0;
      for (let k = 0; k < 3 && rows > 1; k++) {
        const a = rng.int(0, rows - 1);
        const b = rng.int(a, rows);
        assertBytes(await ds.read(a, b), d.raw.subarray(a * rowBytes, b * rowBytes), `${label} ${d.path}: rows ${a}..${b}`);
      }
    } else {
      const got = await ds.readVlen();
      assert.equal(got.length, d.items!.length, `${label} ${d.path}: vlen count`);
      d.items!.forEach((want, i) => {
        const w = typeof want === 'string' ? new Uint8Array(Buffer.from(want, 'utf8')) : want;
        assertBytes(got[i]!, w, `${label} ${d.path}: vlen element ${i}`);
      });
    }
  }
  for (const [path, o] of Object.entries(exp.doc.objects)) {
    if (o.kind !== 'group' && o.kind !== 'dataset') continue;
    // libhdf5 counts the attributes of a version 2 header from its Attribute Info message
    const header = await readHeader(async (at, n) => bytes.subarray(at, at + n), f.addressOf(path));
    assert.equal(header.messages.filter((m) => m.type === MSG.attributeInfo).length, 1, `${label} ${path}: one Attribute Info message`);
    assert.equal(header.messages.filter((m) => m.type === MSG.attribute).length, Object.keys(o.attrs).length, `${label} ${path}: attribute messages`);
    const attrs = f.attributes(path);
    assert.deepEqual(attrs.map((a) => a.name).sort(), Object.keys(o.attrs).sort(), `${label} ${path}: attribute names`);
    for (const a of attrs) {
      const want: H5Attr = o.attrs[a.name]!;
      assert.deepEqual(a.shape, want.shape, `${label} ${path} @${a.name}: shape`);
      if (/f2$/.test(want.dtype)) continue; // fur's attribute reader leaves half floats undecoded
      const got = await f.readAttribute(a);
      const norm = (x: unknown) => (typeof x === 'number' && Number.isNaN(x) ? 'NaN' : x === Infinity ? 'Infinity' : x === -Infinity ? '-Infinity' : x);
      // int64 beyond 2^53 comes back as the nearest double, as the JSON oracles' decimal strings do through Number
      const approx = (x: unknown) => (typeof x === 'string' && /^-?\d+$/.test(x) ? Number(x) : x);
      // references come back as the paths they name, one list per element; the oracles join each
      const g = got === undefined ? null : Array.isArray(got) ? got.map((x) => (Array.isArray(x) ? x.join(',') : norm(x))) : norm(got);
      const w = Array.isArray(want.value) ? want.value.map(approx) : approx(want.value);
      assert.deepEqual(g, w, `${label} ${path} @${a.name}: value by fur's reader`);
    }
  }
}
