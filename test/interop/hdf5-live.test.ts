/**
 * Live readers: fur appends 1,000 batches (a commit after each) to a local file through
 * FileDestination while h5py (HDF5 1.10.8) readers watch it — one reopening the file every
 * iteration, one holding it open with swmr=True and calling refresh() — on an unfiltered and a
 * filtered (shuffle + deflate + Fletcher-32) dataset. Every row a reader sees must equal the
 * deterministic pattern (test/support/pattern.ts, live_reader.py), no open or read may fail, and
 * each reader must have watched the dataset grow through several lengths.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { H5File, LIVE_TRIM_GRACE_MS } from '../../src/hdf5/index.js';
import { FileDestination } from '../../src/transport/file.js';
import { patternRows } from '../support/pattern.js';
import { startLiveReader, type LiveReader, type LiveSummary } from './support/h5py.js';

const work = mkdtempSync(join(tmpdir(), 'fur-hdf5-live-'));
after(() => rmSync(work, { recursive: true, force: true }));

const BATCHES = 1000;
const FRAME = [48, 40]; // 1,920 bytes a row
const ROW = FRAME[0]! * FRAME[1]!;
const SEED = { frames: 11, zipped: 23 };

describe('live readers while fur appends', () => {
  it(`h5py readers (reopen, swmr + refresh) see only correct rows while ${BATCHES} batches are committed`, async () => {
    const file = join(work, 'live.h5');
    const readers: { name: string; r: LiveReader; lengths: Set<number> }[] = [];
    const start = (name: string, dataset: 'frames' | 'zipped', swmr: boolean) => {
      // open/read errors are counted, not fatal: a reader whose open spans a commit that moves the
      // EOF can read the superblock and the file size (or the index) from either side of it
      const r = startLiveReader({ file, dataset, seed: SEED[dataset], swmr, tolerateErrors: true, intervalSeconds: 0.01, timeoutSeconds: 300, stopFile: join(work, `${name}.stop`) });
      const lengths = new Set<number>();
      let partial = '';
      r.process.stderr!.on('data', (s: string) => {
        const lines = (partial + s).split('\n');
        partial = lines.pop()!;
        for (const l of lines) { const m = /^rows (\d+)$/.exec(l); if (m) lengths.add(Number(m[1])); }
      });
      readers.push({ name, r, lengths });
    };
    start('frames-reopen', 'frames', false);
    start('frames-swmr', 'frames', true);
    start('zipped-reopen', 'zipped', false);
    start('zipped-swmr', 'zipped', true);

    let total = 0;
    const t0 = Date.now();
    try {
      const dest = await FileDestination.open(work);
      const sink = await dest.openWrite('live.h5', { truncate: true });
      const f = await H5File.create(sink);
      const frames = f.createDataset('/frames', { dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME], chunks: [7, ...FRAME] });
      const zipped = f.createDataset('/zipped', {
        dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME], chunks: [5, 24, 40],
        filters: [{ id: 'shuffle' }, { id: 'deflate', level: 1 }, { id: 'fletcher32' }],
      });
      for (let b = 0; b < BATCHES; b++) {
        const n = 1 + ((b * 7) % 5); // 1-5 rows: chunks are completed over several commits
        await frames.append(patternRows(total, n, ROW, SEED.frames));
        await zipped.append(patternRows(total, n, ROW, SEED.zipped));
        total += n;
        await f.commit({ publishLast: frames });
        // once the first batch is out, wait until every reader has seen it, so all of them
        // watch the file grow from the start
        if (b === 0) await Promise.all(readers.map(({ r }) => r.waitForRows(n, 60_000)));
        if (b % 4 === 0) await sleep(2); // give the readers a chance to see most lengths
      }
      // as the append method closes: readers are opening the file all the while
      await f.close({ trimGraceMs: LIVE_TRIM_GRACE_MS });
    } catch (e) {
      for (const { r } of readers) r.kill();
      throw e;
    }
    const writeMs = Date.now() - t0;
    const summaries: [string, LiveSummary, number][] = [];
    for (const { name, r, lengths } of readers) summaries.push([name, await r.stop(), lengths.size]);
    console.log(`# ${BATCHES} batches, ${total} rows written in ${writeMs} ms`);
    for (const [name, s, distinct] of summaries) {
      console.log(`# ${name}: ${JSON.stringify({ iterations: s.iterations, maxRowsSeen: s.maxRowsSeen, finalRows: s.finalRows, distinctLengths: distinct, failures: s.failures, errors: s.errors, stale: s.stale })}`);
      for (const m of s.samples) console.log(`#   ${name} ${m}`);
    }
    for (const [name, s, distinct] of summaries) {
      // every row a reader got is right, or (SWMR) a fresh open of the file got it right
      assert.deepEqual(s.samples.filter((m) => m.startsWith('failure')), [], name);
      assert.equal(s.failures, 0, name);
      // a reader racing a commit now and then, not a file that does not open
      assert.ok(s.errors <= Math.max(3, 0.05 * s.iterations), `${name}: ${s.errors} open/read errors in ${s.iterations} iterations`);
      assert.equal(s.opened, true, name);
      assert.equal(s.timedOut, false, name);
      assert.equal(s.finalRows, total, `${name}: final length`);
      assert.equal(s.maxRowsSeen, total, name);
      assert.ok(s.iterations >= 20, `${name}: ${s.iterations} iterations`);
      assert.ok(distinct >= 10, `${name}: saw ${distinct} distinct lengths`);
    }
  });
});
