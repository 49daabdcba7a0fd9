import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as zarr from 'zarrita';
import { ReferenceStore } from '@zarrita/storage';
import { H5File, MemorySink } from '../../src/hdf5/index.js';
import { buildReferences } from '../../src/index/kerchunk.js';
import { h5wasmRead, dataset, valueBytes, valueStrings } from '../support/h5wasm.js';
import { startRangeServer, type RangeServer } from '../support/http-range.js';
import { cases, writeCases } from './cases.js';

describe('kerchunk sidecar read by zarrita.js', () => {
  let dir: string;
  let server: RangeServer;
  let bytes: Uint8Array;
  let refs: Awaited<ReturnType<typeof buildReferences>>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fur-index-'));
    bytes = await writeCases();
    await writeFile(join(dir, 'cases.h5'), bytes);
    server = await startRangeServer(dir);
    const sink = new MemorySink();
    await sink.write(0, bytes);
    const file = await H5File.open(sink, { readOnly: true });
    refs = await buildReferences(file, server.url('cases.h5'));
  });
  after(async () => server.close());

  test('every typed dataset equals what h5wasm (HDF5 2.0) reads', async () => {
    const doc = await h5wasmRead(join(dir, 'cases.h5'));
    const store = ReferenceStore.fromSpec(refs as unknown as Record<string, unknown>);
    for (const c of cases()) {
      const arr = await zarr.open(zarr.root(store).resolve(c.path.slice(1)), { kind: 'array' });
      const got = await zarr.get(arr);
      assert.deepEqual(got.shape, dataset(doc, c.path).shape, `${c.path}: shape`);
      if (got.data instanceof zarr.ByteStringArray) {
        // fixed-length strings: compare the strings both readers see
        const strs = Array.from({ length: got.data.length }, (_, i) => (got.data as zarr.ByteStringArray).get(i));
        assert.deepEqual(strs, valueStrings(dataset(doc, c.path)), `${c.path}: strings differ from h5wasm`);
        continue;
      }
      const data = got.data as unknown as ArrayBufferView;
      const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      // zarrita returns native (little-endian) values; h5wasm's bytes are little-endian too
      assert.equal(Buffer.compare(Buffer.from(raw), Buffer.from(valueBytes(dataset(doc, c.path)))), 0, `${c.path}: values differ from h5wasm`);
    }
  });

  test('variable-length data is listed, not silently dropped; attributes carried', () => {
    const root = JSON.parse(refs.refs['.zattrs'] as string);
    assert.deepEqual(root.fur_unreferenced, ['/frame_name']);
    assert.equal(root.title, 'index test');
    assert.equal(JSON.parse(refs.refs['data/.zattrs'] as string).units, 'counts');
    assert.ok(!('frame_name/.zarray' in refs.refs));
  });

  test('chunk references are [url, offset, length] into the HDF5 file, checksum bytes excluded', () => {
    const entries = Object.entries(refs.refs).filter(([k]) => k.startsWith('data/') && !k.includes('.z'));
    // 23 rows in chunks of 4 → 6 chunk rows; 16×20 frames in 8×10 chunks → 4 per row
    assert.equal(entries.length, 6 * 4);
    for (const [, v] of entries) {
      assert.ok(Array.isArray(v));
      const [url, offset, length] = v as [string, number, number];
      assert.equal(url, server.url('cases.h5'));
      assert.ok(offset > 0 && offset + length + 4 <= bytes.length);
    }
    const meta = JSON.parse(refs.refs['data/.zarray'] as string);
    assert.deepEqual(meta.compressor, { id: 'zlib', level: 5 });
    assert.deepEqual(meta.filters, [{ id: 'shuffle', elementsize: 2 }]);
  });
});
