import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FigureReader, WINDOW_SEC } from '../../src/serve/figures.js';
import { FrameTap } from '../../src/serve/frames.js';
import { LiveState } from '../../src/serve/state.js';

/**
 * a status event: `frames` committed (one a file, 100 wire bytes each), `backlog` files of 80
 * source bytes waiting, the model's current upload rate `rate`
 */
function status(at: number, frames: number, backlog: number, rate = 0) {
  return {
    type: 'status' as const, watch: true, elapsedSec: at,
    files: { seen: frames, committed: frames, kept: 0 }, frames: { seen: frames, committed: frames },
    bytes: { sent: frames * 100, committed: frames * 100, done: frames * 80 },
    rate: { current: rate, average: 0 }, backlog: { files: backlog, bytes: backlog * 80 }, reconnects: 0,
  };
}
const committed = (frames: number) => ({ files: frames, bytes: frames * 80, frames });

test('instrument rates over the last seconds, the upload\'s from the model; keeping up while the backlog does not grow', () => {
  const r = new FigureReader();
  assert.equal(r.read(status(0, 0, 0), 0, 0, committed(0), 1, true).instrument, undefined, 'no rate from one event');
  // the instrument makes 10 files a second; fur commits them 5 at a time, every half second
  let f = r.read(status(1, 5, 5, 500), 0, 0, committed(5), 1, true);
  assert.deepEqual(f.instrument, { rate: 800, fps: 10, keepingUp: false, behindBy: 400 });
  assert.equal(f.rate.current, 500);
  for (let t = 2; t <= 10; t++) f = r.read(status(t, 10 * t - 5, 5, 1000), 0, 0, committed(10 * t - 5), 1, true);
  // the window: rates since WINDOW_SEC ago, not since the start
  assert.equal(WINDOW_SEC, 5);
  assert.deepEqual(f.instrument, { rate: 800, fps: 10, keepingUp: true, behindBy: 0 });
  assert.equal(f.rate.current, 1000);
  // the link stalls: nothing committed for 3 s, the backlog grows at the instrument's rate
  for (let t = 11; t <= 13; t++) f = r.read(status(t, 95, 5 + 10 * (t - 10), 400), 0, 0, committed(95), 1, true);
  assert.equal(f.instrument!.keepingUp, false);
  assert.equal(f.instrument!.rate, 800);
  assert.equal(f.instrument!.behindBy, 800 - (95 - 75) * 80 / 5);
  assert.equal(f.rate.current, 400);
  assert.deepEqual(f.backlog, { files: 35, bytes: 35 * 80 });
  // a finished capture (upload): no instrument
  assert.equal(new FigureReader().read(status(1, 5, 5), 0, 0, committed(5), 1, false).instrument, undefined);
});

test('the end\'s counts are the final figures, though the last status event came before the last commit', () => {
  const live = new LiveState({ command: 'watch', method: 'append', dataset: '/data', filters: [], destination: 'file:///tmp/x.h5', deleteSource: false }, new FrameTap());
  live.observe({ type: 'start', method: 'append', source: '/nonexistent-fur-source', destination: 'file:///tmp/x.h5', resumed: { files: 0, frames: 0 } });
  live.observe(status(1, 5, 3));
  live.observe({ type: 'commit', batch: 1, files: 3, frames: 3, bytes: 300, totalFrames: 8, names: ['a', 'b', 'c'], reason: 'the source ended' });
  const { type: _, ...progress } = status(1, 5, 3);
  live.observe({ type: 'done', files: 8, frames: 8, bytes: 800, seconds: 1.4, mbPerSec: 0, rejected: 0, endReason: 'stop-file', kept: [], progress });
  const s = live.status();
  assert.equal(s.state, 'finished');
  assert.equal(s.commits, 1);
  assert.deepEqual([s.figures!.frames.committed, s.figures!.bytes.committed, s.figures!.backlog.files], [8, 800, 0]);
  assert.equal(s.figures!.disk, undefined, 'no disk figure for a source that is not there');
});
