/**
 * Commits that overlap the next batch (H5File.commit's onSealed, a second handle for metadata):
 * the rows of batch k+1 are appended — and their writes issued — while commit k still runs its
 * barriers. Writes complete late and out of order, as over several SFTP channels. Cutting the
 * combined write stream (both handles, in the order the writes were made) anywhere must still
 * leave a file that fur's reader opens and that shows a committed state: a whole number of
 * batches, every row right, and the per-frame dataset never behind the frames.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H5File, MemorySink, type Sink } from '../../src/hdf5/index.js';
import { dataset, h5wasmRead, valueBytes } from '../support/h5wasm.js';

/** One file behind two handles; every write is logged in the order it was made. */
class SharedFile {
  /** writes in the order they were made */
  readonly log: Array<{ offset: number; bytes: Uint8Array }> = [];
  /** writes in the order they landed (what a crash leaves: any prefix of this) */
  readonly landed: Array<{ offset: number; bytes: Uint8Array }> = [];
  readonly syncs: number[] = [];
  handle(): Sink & { read(o: number, n: number): Promise<Uint8Array>; size(): Promise<number> } {
    const mem = this.mem;
    const inFlight = new Set<Promise<void>>();
    return {
      write: (offset, data) => {
        const w = { offset, bytes: data.slice() };
        this.log.push(w);
        // acknowledged a few turns later, in any order: writes over several channels
        const p = new Promise<void>((resolve) => setTimeout(() => { this.landed.push(w); void mem.write(offset, data).then(resolve); }, (offset * 7919) % 5));
        inFlight.add(p);
        void p.then(() => inFlight.delete(p));
        return p;
      },
      flush: async () => { await Promise.all([...inFlight]); },
      sync: async () => { await Promise.all([...inFlight]); this.syncs.push(this.log.length); },
      truncate: async (n) => { await Promise.all([...inFlight]); await mem.truncate(n); },
      read: (o, n) => mem.read(o, n),
      size: () => mem.size(),
      close: async () => { await Promise.all([...inFlight]); },
    };
  }
  private readonly mem = new MemorySink();
}

const ROWS = 5; // rows per batch: chunks of 4 rows, so batches end inside chunks
const FRAME = [8, 6];

function rowValue(row: number): number { return (row * 37 + 11) % 251; }

/** `n` rows from row `first` on, each filled with its rowValue */
function rowsOf(first: number, n: number): Uint8Array {
  const b = new Uint8Array(n * FRAME[0]! * FRAME[1]!);
  for (let r = 0; r < n; r++) b.fill(rowValue(first + r), r * FRAME[0]! * FRAME[1]!, (r + 1) * FRAME[0]! * FRAME[1]!);
  return b;
}

describe('commits overlapping the next batch', () => {
  for (const deferFirstCommit of [false, true]) {
  it(`every cut of the write stream opens and shows a whole number of batches, rows right${deferFirstCommit ? ' (file written first by its first commit)' : ''}`, async () => {
    const shared = new SharedFile();
    const data = shared.handle();
    const meta = shared.handle();
    const file = await H5File.create(data, { durable: true, metaSink: meta, eofHeadroom: 4096, deferFirstCommit });
    // a new file's superblock and root header share a barrier (one handle keeps them in order);
    // the landed order is checked from the file's creation on. A file whose first commit is its
    // creation (renamed into place once that commit ends) is checked from the end of that commit.
    let created = shared.landed.length;
    let made = shared.log.findIndex((w) => w.offset === 0) + 1;
    if (deferFirstCommit) assert.equal(shared.log.length, 0, 'nothing written before the first commit');
    const frames = file.createDataset('/data', { dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME], chunks: [4, ...FRAME] });
    const names = file.createDataset('/frame_name', { dtype: 'vlen-str', shape: [0], maxshape: [null], chunks: [8] });
    const committed: number[] = [0];
    let sealed: Promise<void> = Promise.resolve();
    const commits: Promise<void>[] = [];
    for (let batch = 0; batch < 12; batch++) {
      await sealed; // rows of this batch follow the previous commit's seal, not its end
      const rows = new Uint8Array(ROWS * FRAME[0]! * FRAME[1]!);
      for (let r = 0; r < ROWS; r++) rows.fill(rowValue(batch * ROWS + r), r * FRAME[0]! * FRAME[1]!, (r + 1) * FRAME[0]! * FRAME[1]!);
      await frames.append(rows, ROWS);
      await names.appendVlen(Array.from({ length: ROWS }, (_, r) => `f${batch * ROWS + r}`));
      let onSealed!: () => void;
      sealed = new Promise<void>((r) => { onSealed = r; });
      commits.push(file.commit({ publishLast: frames, onSealed }).then(() => {
        committed.push((batch + 1) * ROWS);
        if (deferFirstCommit && batch === 0) { created = shared.landed.length; made = shared.log.length; }
      }));
    }
    await Promise.all(commits);
    await file.close();
    assert.deepEqual(committed, Array.from({ length: 13 }, (_, i) => i * ROWS), 'commits end in order');

    let opened = 0;
    for (const [stream, from] of [[shared.log, made], [shared.landed, created]] as const) {
    for (let cut = from; cut <= stream.length; cut++) {
      const mem = new MemorySink();
      for (const w of stream.slice(0, cut)) await mem.write(w.offset, w.bytes);
      const f = await H5File.open(mem, { readOnly: true });
      if (!f.has('/data')) { await f.close(); continue; } // the datasets' first commit has not published yet
      const d = f.dataset('/data');
      const n = d.shape[0];
      assert.ok(n % ROWS === 0, `cut ${cut}: ${n} rows is not a whole number of batches`);
      const values = await d.read(0, n);
      for (let r = 0; r < n; r++) assert.equal(values[r * FRAME[0]! * FRAME[1]!], rowValue(r), `cut ${cut}: row ${r}`);
      const nm = f.dataset('/frame_name');
      assert.ok(nm.shape[0] >= n, `cut ${cut}: ${nm.shape[0]} names for ${n} frames`);
      const got = await nm.readVlen(0, n);
      assert.deepEqual(got.map((b) => Buffer.from(b).toString()), Array.from({ length: n }, (_, r) => `f${r}`));
      await f.close();
      opened++;
    }
    }
    assert.ok(opened > 100, `${opened} cuts checked`);
  });
  }

  it('the closing commit states its shrunken EOF with its data barrier, before any structure of its own', async () => {
    const shared = new SharedFile();
    const file = await H5File.create(shared.handle(), { durable: true, metaSink: shared.handle(), eofHeadroom: 4096 });
    const frames = file.createDataset('/data', { dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME], chunks: [4, ...FRAME] });
    await frames.append(rowsOf(0, 8), 8);
    await file.commit();
    // rows the close commits: their chunks need new index entries (B) and a new shape (C)
    await frames.append(rowsOf(8, 6), 6);
    const before = shared.log.length;
    await file.close();
    const closing = shared.log.slice(before);
    assert.ok(closing.length > 2, 'the closing commit writes its index and headers');
    assert.equal(closing[0]!.offset, 0, 'the superblock comes first');
    assert.equal(closing.filter((w) => w.offset === 0).length, 1, 'and only once');
    const mem = new MemorySink();
    for (const w of shared.log) await mem.write(w.offset, w.bytes);
    const f = await H5File.open(mem, { readOnly: true });
    const d = f.dataset('/data');
    assert.equal(d.shape[0], 14);
    const values = await d.read(0, 14);
    for (let r = 0; r < 14; r++) assert.equal(values[r * FRAME[0]! * FRAME[1]!], rowValue(r), `row ${r}`);
    await f.close();
    // and libhdf5 (h5wasm) reads the same 14 rows from those bytes
    const stored = await mem.read(0, await mem.size());
    const rows = Buffer.from(valueBytes(dataset(await h5wasmRead(stored), '/data')));
    assert.ok(rows.equals(Buffer.concat([rowsOf(0, 8), rowsOf(8, 6)])), 'h5wasm reads the rows written');
  });
});
