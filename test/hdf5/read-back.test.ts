/**
 * What a file reads back of itself while it is written: the chunk index a sidecar needs after
 * every commit comes from the metadata this file wrote, not from the destination (over a long
 * link every node read is a round trip, and the next commit waits for the sidecar's).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { H5File, MemorySink } from '../../src/hdf5/index.js';
import { dataset, h5wasmRead, valueBytes } from '../support/h5wasm.js';

const ROW = 8;
const row = (r: number) => Uint8Array.from({ length: ROW }, (_, i) => (r * 31 + i * 7) % 251);

it('chunk references after each commit need no read of the destination, through B-tree leaves filling and splitting', async () => {
  const mem = new MemorySink();
  let reads = 0;
  /** the same file, its reads counted */
  class Counted extends MemorySink {
    override read(o: number, n: number): Promise<Uint8Array> { reads++; return super.read(o, n); }
  }
  const sink = new Counted();
  const file = await H5File.create(sink, { eofHeadroom: 4096 });
  // one row per chunk, 32 per commit: every other commit starts a new 64-entry leaf, and its full
  // left neighbour (not otherwise rewritten) learns its new right sibling
  const ds = file.createDataset('/frames', { dtype: 'uint8', shape: [0, ROW], maxshape: [null, ROW], chunks: [1, ROW] });
  let rows = 0;
  for (let commit = 0; commit < 10; commit++) {
    const batch = new Uint8Array(32 * ROW);
    for (let i = 0; i < 32; i++) batch.set(row(rows + i), i * ROW);
    await ds.append(batch, 32);
    rows += 32;
    await file.commit();
    reads = 0;
    const refs = await file.chunkRefs('/frames');
    assert.equal(reads, 0, `commit ${commit + 1}: ${reads} reads of the destination`);
    assert.equal(refs.length, rows);
    // every reference points at its row's bytes
    for (const r of refs) assert.deepEqual(sink.bytes().subarray(r.address, r.address + r.size), row(r.offset[0]!));
  }
  const written = (await file.chunkRefs('/frames')).map((r) => [r.offset[0], r.address, r.size]);
  await file.close();
  // what it remembered is what is in the file: a reader that opens it finds the same index
  await mem.write(0, sink.bytes());
  const again = await H5File.open(mem, { readOnly: true });
  assert.deepEqual((await again.chunkRefs('/frames')).map((r) => [r.offset[0], r.address, r.size]), written);
  // and libhdf5 (h5wasm) reads every row back
  const rowsWritten = Buffer.concat(Array.from({ length: rows }, (_, r) => row(r)));
  assert.deepEqual(Buffer.from(valueBytes(dataset(await h5wasmRead(sink.bytes()), '/frames'))), rowsWritten);
});
