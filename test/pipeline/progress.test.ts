/**
 * The progress model on a virtual clock: what an upload of a known total and a watch report as
 * bytes leave, against what actually happens next (the figures the issue found wrong: frames that
 * counted only commits, a rate averaged over idle time, an ETA of 0 s mid-capture, no percent).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Progress, type RunEvent } from '../../src/pipeline/progress.js';
import type { LocalState } from '../../src/source/instrument.js';

const FILE = 1000;

/** A run whose clock and sent-bytes counter the test moves. */
function model(o: { watch?: boolean; maxFrames?: number; deleteSource?: boolean; local?: () => LocalState } = {}) {
  let now = 0;
  let sent = 0;
  const events: RunEvent[] = [];
  const p = new Progress((e) => events.push(e), {
    now: () => now, sent: () => sent, watch: o.watch, maxFrames: o.maxFrames, deleteSource: o.deleteSource,
    local: o.local && (async () => o.local!()),
  });
  return {
    p, events,
    /** one second passes with `bytes` sent */
    advance(bytes: number) { now += 1000; sent += bytes; },
    /** one second passes with `bytes` sent, then a sample */
    async second(bytes: number) { this.advance(bytes); await p.sample(); },
    get sent() { return sent; },
  };
}

describe('progress model', () => {
  test('upload of a finished folder: percent and ETA from the current rate match the actual finish', async () => {
    const m = model();
    const names = Array.from({ length: 20 }, (_, i) => `f${i}.raw`);
    m.p.listed(names.map(() => ({ size: FILE })));
    await m.p.sample();
    // idle 10 s first (connecting, a slow server): the current rate must not average it in
    for (let s = 0; s < 10; s++) await m.second(0);
    let took = 0;
    let committed = 0;
    const etas: { at: number; finish: number }[] = [];
    for (let s = 1; m.sent < 20 * FILE; s++) {
      m.advance(500);
      // the pipeline reads a file ahead of what is sent, and commits every 2 files
      while (took * FILE < m.sent + FILE && took < names.length) m.p.took(names[took++]!, FILE, 1);
      while ((committed + 2) * FILE <= m.sent) {
        m.p.committed(committed / 2, [names[committed]!, names[committed + 1]!].map((name) => ({ name, size: FILE })), 2, 2 * FILE, committed + 2, 'batch full');
        committed += 2;
      }
      await m.p.sample();
      const snap = m.p.snapshot();
      assert.equal(snap.frames.total, 20, 'total frames of a finished folder of like files');
      assert.equal(snap.files.total, 20);
      assert.equal(snap.bytes.total, 20 * FILE);
      assert.equal(snap.percent, Math.round((1000 * m.sent) / (20 * FILE)) / 10, `percent at ${m.sent} bytes`);
      assert.equal(snap.frames.seen, took);
      assert.equal(snap.frames.committed, committed);
      assert.ok(snap.rate.average < snap.rate.current || s === 1, 'the average counts the idle start, the current rate does not');
      if (s >= 6) {
        assert.equal(snap.rate.current, 500);
        etas.push({ at: 10 + s, finish: 10 + s + snap.etaSec! });
      }
      assert.deepEqual(snap.backlog, { files: 20 - committed, bytes: (20 - committed) * FILE });
    }
    // the run finished at 10 s + 40 s: every ETA said so
    for (const e of etas) assert.equal(e.finish, 50, `ETA given at ${e.at} s: ${JSON.stringify(etas)}`);
    const end = m.p.snapshot();
    assert.equal(end.percent, 100);
    assert.equal(end.etaSec, 0);
  });

  test('bytes on the wire move the figures before any commit', async () => {
    const m = model();
    m.p.listed([{ size: 10 * FILE }]);
    m.p.took('stack.tif', 10 * FILE, 10);
    for (let s = 0; s < 4; s++) await m.second(FILE);
    const snap = m.p.snapshot();
    assert.equal(snap.frames.committed, 0);
    assert.equal(snap.bytes.done, 4 * FILE);
    assert.equal(snap.percent, 40);
    assert.equal(snap.etaSec, 6);
  });

  test('what a previous run committed counts as done; a kept file is done with, and counted again if retried', async () => {
    const m = model();
    m.p.listed([{ size: FILE }, { size: FILE }, { size: FILE }, { size: FILE }]);
    m.p.alreadyStored('a', FILE);
    m.p.took('b', FILE, 1);
    m.p.kept('b', FILE);
    await m.p.sample();
    let snap = m.p.snapshot();
    assert.equal(snap.bytes.done, 2 * FILE);
    assert.equal(snap.percent, 50);
    assert.equal(snap.files.kept, 1);
    assert.equal(m.p.rejected, 1);
    m.p.unkept('b');
    snap = m.p.snapshot();
    assert.equal(snap.files.kept, 0);
    assert.equal(m.p.rejected, 0);
    assert.equal(snap.bytes.done, FILE);
  });

  test('watch with --count: the total from the frames taken so far; reconnections counted', async () => {
    const m = model({ watch: true, maxFrames: 100 });
    m.p.took('f0', FILE, 1);
    m.p.took('f1', FILE, 1);
    await m.second(2 * FILE);
    m.p.event({ type: 'reconnected', afterSec: 3 });
    const snap = m.p.snapshot();
    assert.equal(snap.frames.total, 100);
    assert.equal(snap.bytes.total, 100 * FILE);
    assert.equal(snap.percent, 2);
    assert.equal(snap.reconnects, 1);
  });

  test('watch: keeping up, then falling behind with the backlog growing and the disk filling', async () => {
    let written = 0;
    let waiting = 0;
    const free = 1e9;
    const m = model({ watch: true, deleteSource: true, local: () => ({ written, waiting: { files: Math.round(waiting / 1e6), bytes: waiting }, free }) });
    await m.p.sample();
    // the first files wait before any is sent: not yet a sign of falling behind
    for (let s = 0; s < 3; s++) { written += 1e7; waiting += 1e7; await m.second(0); }
    assert.equal(m.p.snapshot().instrument?.keepingUp, true, 'judged over more than the first seconds');
    waiting = 0;
    // 20 s at 10 MB/s written and 10 MB/s sent: a steady backlog of one file
    waiting = 1e6;
    for (let s = 0; s < 20; s++) { written += 1e7; await m.second(1e7); }
    let snap = m.p.snapshot();
    assert.deepEqual(snap.instrument, { rate: 1e7, keepingUp: true, behindBy: 0 });
    assert.equal(snap.disk?.free, free);
    assert.equal(snap.disk?.fullInSec, undefined, 'sources deleted as committed: the disk does not fill');
    // then 20 s at 10 MB/s written and 4 MB/s sent: 6 MB/s more waits every second
    for (let s = 0; s < 20; s++) { written += 1e7; waiting += 6e6; await m.second(4e6); }
    snap = m.p.snapshot();
    assert.equal(snap.instrument?.keepingUp, false);
    assert.equal(snap.instrument?.behindBy, 6e6);
    assert.equal(snap.instrument?.rate, 1e7);
    assert.equal(snap.disk?.fullInSec, Math.round(free / 6e6));
    assert.equal(snap.rate.current, 4e6);
  });

  test('the history is bounded and holds the samples in order', async () => {
    const m = model();
    for (let s = 0; s < 700; s++) await m.second(1);
    const h = m.p.history();
    assert.equal(h.length, 600);
    assert.equal(h[0]!.t, 101_000);
    assert.equal(h[599]!.t, 700_000);
    assert.equal(h[599]!.sent, 700);
  });
});
