/** Checks shared by the writer's test tiers: fur's own reader against a case's expectation. */
import assert from 'node:assert/strict';
import { H5File, MemorySink } from '../../src/hdf5/index.js';
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
  assert.deepEqual([...f.paths()].sort(), Object.keys(exp.doc.objects).sort(), `${label}: objects`);
  const rng = new Rng(bytes.length);
  for (const d of exp.datasets) {
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
    assert.deepEqual(f.attributes(path).map((a) => a.name).sort(), Object.keys(o.attrs).sort(), `${label} ${path}: attribute names`);
  }
}
