/**
 * No wasted space in a file that is appended to, interrupted and resumed (docs/hdf5-layout.md,
 * "Space"): the file stays within its data, its metadata region and two chunks, however many
 * commits rewrite a partial filtered chunk row and wherever a writer is dropped. A writer is
 * dropped by cutting its stream of writes (both handles, as append opens the file twice, commits
 * overlapping the next batch as append does) after any write; the next writer reopens what the
 * cut left and appends the rest, as a restarted run does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H5File, MemorySink, type Filter, type RandomAccess, type Sink } from '../../src/hdf5/index.js';
import { dataset, h5wasmRead, valueBytes, valueStrings } from '../support/h5wasm.js';
import { spaceAccount } from '../support/space.js';
import { RECORD_AREA } from '../../src/hdf5/space-record.js';
import { SUPERBLOCK_SIZE } from '../../src/hdf5/superblock.js';

const FRAME = [8, 6];
const ROW = FRAME[0]! * FRAME[1]!;
const CHUNK = 8; // rows per chunk: batches end inside chunks
const TOTAL = 40;

function rowValue(row: number): number { return (row * 37 + 11) % 251; }
function rowsOf(first: number, n: number): Uint8Array {
  const b = new Uint8Array(n * ROW);
  for (let r = 0; r < n; r++) b.fill(rowValue(first + r), r * ROW, (r + 1) * ROW);
  return b;
}

/** A file in memory that logs every write, in the order made, whichever handle made it. */
class Journal extends MemorySink {
  readonly log: Array<{ offset: number; bytes: Uint8Array }> = [];
  override async write(offset: number, data: Uint8Array): Promise<void> {
    this.log.push({ offset, bytes: data.slice() });
    return super.write(offset, data);
  }
  /** a second handle on the same file (append's handle for commit metadata) */
  handle(): Sink {
    return { write: (o, d) => this.write(o, d), flush: async () => {}, sync: async () => {}, close: async () => {} };
  }
  static async from(bytes: Uint8Array): Promise<Journal> {
    const j = new Journal();
    await MemorySink.prototype.write.call(j, 0, bytes);
    return j;
  }
}

const VARIANTS: Array<{ name: string; filters: Filter[] }> = [
  { name: 'Fletcher-32 (rows written in place)', filters: [{ id: 'fletcher32' }] },
  { name: 'shuffle + deflate + Fletcher-32', filters: [{ id: 'shuffle' }, { id: 'deflate', level: 4 }, { id: 'fletcher32' }] },
];

/**
 * What a run of `append` does with the file, in little: reopen it (or start it), bring the names
 * back to the frames' count, append `batches` rows at a time up to `total` — each batch's rows
 * while the previous commit publishes — and close.
 */
async function writeRun(file: Journal, filters: Filter[], batches: number[], total = TOTAL, chunk = CHUNK): Promise<void> {
  const meta = file.handle();
  let f = await H5File.open(file, { metaSink: meta, eofHeadroom: 4096 }).catch(() => undefined);
  if (!f?.has('/data')) {
    // cut before the first batch was committed: start over, as append does with the file it
    // makes under a temporary name (the datasets are made by the first commit, never after)
    await f?.close({ discard: true });
    await file.truncate(0);
    f = await H5File.create(file, { spaceRecord: true, metaReserve: 4096, eofHeadroom: 4096, metaSink: meta, deferFirstCommit: true });
    f.createDataset('/data', { dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME], chunks: [chunk, ...FRAME], filters });
    f.createDataset('/frame_name', { dtype: 'vlen-str', shape: [0], maxshape: [null], chunks: [16] });
  }
  const frames = f.dataset('/data');
  const names = f.dataset('/frame_name');
  await names.truncate(frames.shape[0]);
  let n = frames.shape[0];
  let sealed: Promise<void> = Promise.resolve();
  const commits: Promise<void>[] = [];
  for (let b = 0; n < total; b++) {
    const k = Math.min(batches[b % batches.length]!, total - n);
    await sealed;
    await frames.append(rowsOf(n, k), k);
    await names.appendVlen(Array.from({ length: k }, (_, i) => `f${n + i}`));
    n += k;
    let onSealed!: () => void;
    sealed = new Promise<void>((r) => { onSealed = r; });
    // the capture's last commit trims the EOF headroom, as append's does
    commits.push(f.commit({ publishLast: frames, onSealed, trim: n >= total }));
  }
  await Promise.all(commits);
  await f.close();
}

/** the file holds rows [0, rows) of the capture, names beside them (fur's reader) */
async function assertRows(file: RandomAccess, rows: number | 'whole batches', what: string): Promise<number> {
  const f = await H5File.open(file, { readOnly: true });
  try {
    if (!f.has('/data')) return 0;
    const d = f.dataset('/data');
    const n = d.shape[0];
    if (rows !== 'whole batches') assert.equal(n, rows, `${what}: rows`);
    const values = await d.read(0, n);
    for (let r = 0; r < n; r++) assert.equal(values[r * ROW], rowValue(r), `${what}: row ${r}`);
    const names = await f.dataset('/frame_name').readVlen(0, n);
    assert.deepEqual(names.map((b) => Buffer.from(b).toString()), Array.from({ length: n }, (_, r) => `f${r}`), `${what}: names`);
    return n;
  } finally {
    await f.close();
  }
}

async function assertWithinBound(file: Journal, what: string): Promise<void> {
  const a = await spaceAccount(file);
  assert.ok(a.chunk > 0, `${what}: a filtered dataset`);
  assert.ok(a.dead <= 2 * a.chunk, `${what}: ${a.dead} dead bytes, more than two chunks (${2 * a.chunk}); dead: ${JSON.stringify(a.gaps)}`);
  assert.ok(a.size <= a.bound, `${what}: ${a.size} bytes > data ${a.data} + metadata region ${a.metaRegion} + two chunks ${2 * a.chunk}`);
  assert.equal(a.metaLost, 0, `${what}: metadata region bytes in use by no structure`);
}

/** a deterministic generator of cut points */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe('space: an append file stays within data + metadata region + two chunks', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: a partial chunk row rewritten at each of 60 commits leaves no copy per commit`, async () => {
      const file = new Journal();
      await writeRun(file, v.filters, [1, 2, 1, 3], 100);
      await assertRows(file, 100, 'after 60 commits');
      await assertWithinBound(file, 'after 60 commits');
      // and libhdf5 reads every row and name
      const doc = await h5wasmRead(file.bytes());
      assert.ok(Buffer.from(valueBytes(dataset(doc, '/data'))).equals(Buffer.from(rowsOf(0, 100))), 'h5wasm reads the rows written');
      assert.deepEqual(valueStrings(dataset(doc, '/frame_name')), Array.from({ length: 100 }, (_, r) => `f${r}`));
    });

    it(`${v.name}: a capture whose only partial chunk row is its last takes no tail slots`, async () => {
      // whole chunks at every commit but the last (44 rows in chunks of 8): nothing is written twice
      const file = new Journal();
      await writeRun(file, v.filters, [CHUNK], TOTAL + 4);
      await assertRows(file, TOTAL + 4, 'closed');
      await assertWithinBound(file, 'closed');
      const a = await spaceAccount(file);
      assert.equal(a.dead, 0, `dead bytes: ${JSON.stringify(a.gaps)}`);
    });

    it(`${v.name}: a file reopened and closed with nothing appended keeps its data and structure as they were`, async () => {
      const closed = new Journal();
      await writeRun(closed, v.filters, [3, 2], 21);
      // dropped right after a commit that ended inside a chunk row: its rows are restored at
      // open, and go back to their place only when rows follow
      const dropped = new Journal();
      const f = await H5File.create(dropped, { spaceRecord: true, metaReserve: 4096, eofHeadroom: 4096 });
      const d = f.createDataset('/data', { dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME], chunks: [CHUNK, ...FRAME], filters: v.filters });
      for (const n of [3, 7, 2]) { await d.append(rowsOf(d.shape[0], n), n); await f.commit(); }
      // a closed file gets no write at all; a dropped one only its EOF trimmed (the superblock
      // and the space record)
      for (const [what, file, allowed] of [['closed', closed, 0], ['dropped after a commit', dropped, SUPERBLOCK_SIZE + RECORD_AREA]] as const) {
        const writes = file.log.length;
        const g = await H5File.open(file, { metaSink: file.handle(), eofHeadroom: 4096 });
        await g.close();
        const outside = file.log.slice(writes).filter((w) => w.offset + w.bytes.length > allowed).map((w) => [w.offset, w.bytes.length]);
        assert.deepEqual(outside, [], `${what}: writes`);
        const r = await H5File.open(file, { readOnly: true });
        const rows = r.dataset('/data');
        assert.ok(Buffer.from(await rows.read(0, rows.shape[0])).equals(Buffer.from(rowsOf(0, file === closed ? 21 : 12))), `${what}: rows`);
        await r.close();
      }
    });

    it(`${v.name}: a writer dropped after any write, and resumed, leaves every row once and no more than two chunks`, async () => {
      const whole = new Journal();
      await writeRun(whole, v.filters, [3, 2, 5, 1]);
      await assertWithinBound(whole, 'uninterrupted');
      let resumed = 0;
      for (let cut = 1; cut < whole.log.length; cut++) {
        const file = new Journal();
        for (const w of whole.log.slice(0, cut)) await MemorySink.prototype.write.call(file, w.offset, w.bytes);
        // what the cut left opens and shows whole batches (when it opens at all)
        let committed = 0;
        try { committed = await assertRows(file, 'whole batches', `cut ${cut}`); } catch (e) { if (!/superblock|signature|truncated/.test(String(e))) throw e; }
        await writeRun(file, v.filters, [2, 4, 1]);
        await assertRows(file, TOTAL, `cut ${cut} (${committed} rows committed), resumed`);
        await assertWithinBound(file, `cut ${cut}, resumed`);
        if (cut % 25 === 0) {
          const doc = await h5wasmRead(file.bytes());
          assert.ok(Buffer.from(valueBytes(dataset(doc, '/data'))).equals(Buffer.from(rowsOf(0, TOTAL))), `cut ${cut}: h5wasm reads every row`);
        }
        resumed++;
      }
      assert.ok(resumed > 100, `${resumed} cuts resumed`);
    });

    for (const [total, chunk] of [[TOTAL, CHUNK], [300, 2]] as const) {
    it(`${v.name}: writers dropped again and again (while resuming, too) leave every row once and no more than two chunks (${total} rows in chunks of ${chunk}${total / chunk > 64 ? ': index nodes added' : ''})`, async () => {
      for (let seq = 0; seq < 12; seq++) {
        const rand = lcg(seq * 7919 + v.filters.length);
        let bytes: Uint8Array = new Uint8Array(0);
        const cuts: number[] = [];
        for (let round = 0; round < 6; round++) {
          // the run this round would make, from what the rounds before left; cut it somewhere
          const run = await Journal.from(bytes);
          await writeRun(run, v.filters, [1 + Math.floor(rand() * 4), 1 + Math.floor(rand() * 3)], total, chunk);
          const cut = Math.floor(rand() * run.log.length);
          cuts.push(cut);
          const file = await Journal.from(bytes);
          for (const w of run.log.slice(0, cut)) await MemorySink.prototype.write.call(file, w.offset, w.bytes);
          bytes = file.bytes();
        }
        const file = await Journal.from(bytes);
        await writeRun(file, v.filters, [3], total, chunk);
        const what = `sequence ${seq} (cuts ${cuts.join(', ')})`;
        await assertRows(file, total, what);
        await assertWithinBound(file, what);
        const doc = await h5wasmRead(file.bytes());
        assert.ok(Buffer.from(valueBytes(dataset(doc, '/data'))).equals(Buffer.from(rowsOf(0, total))), `${what}: h5wasm reads every row`);
        assert.deepEqual(valueStrings(dataset(doc, '/frame_name')), Array.from({ length: total }, (_, r) => `f${r}`));
      }
    });
    }
  }
});
