/**
 * What the renderer puts on a terminal and elsewhere, from a run's events: on a terminal of any
 * width no line is wider than it and the summary replaces the live line; without one a
 * timestamped line every --stats interval; repeated messages folded with a count.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { ProgressSnapshot, RunEvent } from '../../src/pipeline/progress.js';
import { renderer } from '../../src/cli/render.js';
import { statusLine } from '../../src/cli/status-line.js';
import { screen } from '../support/terminal.js';

function snapshot(over: Partial<ProgressSnapshot> = {}): ProgressSnapshot {
  return {
    watch: true, elapsedSec: 4321, files: { seen: 12_345, committed: 12_000, kept: 3, total: 20_000 },
    frames: { seen: 123_456, committed: 120_000, total: 200_000 },
    bytes: { sent: 1.2e11, committed: 1.1e11, done: 1.15e11, total: 2e11 }, percent: 57.5,
    rate: { current: 8.1e7, average: 7.9e7 }, etaSec: 1049, backlog: { files: 1234, bytes: 1.2e9 },
    instrument: { rate: 9.3e7, keepingUp: false, behindBy: 1.2e7 }, disk: { free: 5.8e9, fullInSec: 480 },
    reconnects: 2, limit: 1.05e8, ...over,
  };
}

const SNAPSHOTS = [
  snapshot(),
  snapshot({ instrument: { rate: 9.3e7, keepingUp: true, behindBy: 0 }, disk: { free: 5.8e11 } }),
  snapshot({ watch: false, instrument: undefined, disk: undefined, reconnects: 0, limit: undefined }),
];

/** A terminal of `columns` that records what is written to it. */
function tty(columns: number) {
  const s = new PassThrough() as PassThrough & { columns: number };
  s.columns = columns;
  let text = '';
  s.on('data', (d: Buffer) => { text += d.toString('utf8'); });
  return { stream: s, written: () => text };
}

const done = (progress: ProgressSnapshot): RunEvent => ({
  type: 'done', files: 600, frames: 600, bytes: 1.2e8, seconds: 12.3, mbPerSec: 9.8, rejected: 0, endReason: 'finished', kept: [], progress,
});

describe('status line', () => {
  test('fits every width from 20 to 250 columns, keeping the most important parts', () => {
    for (const s of SNAPSHOTS) {
      for (let w = 20; w <= 250; w++) {
        const line = statusLine(s, w);
        assert.ok(line.length <= w, `${line.length} > ${w}: ${line}`);
      }
      assert.ok(statusLine(s).length > 150, 'unlimited: every part');
    }
    assert.match(statusLine(SNAPSHOTS[0]!, 60), /^falling behind|^behind/);
    assert.match(statusLine(SNAPSHOTS[2]!, 60), /^57\.5% · /);
    assert.match(statusLine(SNAPSHOTS[2]!, 200), /57\.5% · frames 120,000 committed, 123,456 seen of 200,000 · 81\.0 MB\/s · ETA 17m29s · 115\.00 GB of 200\.00 GB/);
    assert.match(statusLine(SNAPSHOTS[0]!), /^falling behind by 12\.0 MB\/s, backlog 1\.20 GB, local disk full in ~8 min/);
    assert.match(statusLine(SNAPSHOTS[1]!, 250), /^keeping up · /);
  });
});

describe('renderer', () => {
  for (const columns of [60, 200]) {
    test(`a terminal of ${columns} columns: no line wider, the summary replaces the live line`, () => {
      const t = tty(columns);
      const r = renderer({ json: false, tty: true, stream: t.stream });
      r.emit({ type: 'start', method: 'append', source: 'src', destination: 'file:///mnt/instrument-share/beamline-7/2026-12-07/run-000042/frames.h5', resumed: { files: 0, frames: 0 } });
      for (const s of SNAPSHOTS) r.emit({ type: 'status', ...s });
      r.emit({ type: 'warning', tag: 'destination', message: 'the server does not offer fsync@openssh.com; each source is read back before it is deleted, which costs a second transfer' });
      r.emit({ type: 'status', ...SNAPSHOTS[2]! });
      r.emit(done(SNAPSHOTS[2]!));
      r.end();
      const sc = screen(t.written(), columns);
      assert.deepEqual(sc.overflows, [], 'no line wider than the terminal');
      const last = sc.lines.filter((l) => l !== '');
      assert.match(last[last.length - 1]!, /^\s*(fur: )?.*\[finished\]$/);
      assert.ok(sc.lines.every((l) => !/ETA|committed, .* seen/.test(l)), `no live line left: ${sc.lines.join('\n')}`);
      assert.ok(sc.lines.some((l) => l.startsWith('fur: warning: the server does not offer')));
    });
  }

  test('resized: the live line is redrawn to the new width', () => {
    const t = tty(200);
    const r = renderer({ json: false, tty: true, stream: t.stream });
    r.emit({ type: 'status', ...SNAPSHOTS[0]! });
    t.stream.columns = 60;
    t.stream.emit('resize');
    const sc = screen(t.written(), 60);
    assert.ok(sc.lines[0]!.length <= 59, sc.lines[0]);
    r.end();
  });

  test('not a terminal: one timestamped line per --stats interval', () => {
    let now = Date.parse('2026-12-07T12:00:00Z');
    const t = tty(80);
    const r = renderer({ json: false, tty: false, stream: t.stream, statsMs: 10_000, now: () => now });
    for (let s = 0; s < 35; s++) { r.emit({ type: 'status', ...SNAPSHOTS[2]! }); now += 1000; }
    r.emit(done(SNAPSHOTS[2]!));
    r.end();
    const lines = t.written().trim().split('\n');
    assert.deepEqual(lines.slice(0, 4).map((l) => l.slice(0, 25)), [
      '2026-12-07T12:00:00.000Z ', '2026-12-07T12:00:10.000Z ', '2026-12-07T12:00:20.000Z ', '2026-12-07T12:00:30.000Z ',
    ]);
    for (const l of lines.slice(0, 4)) assert.ok(l.endsWith(`fur: ${statusLine(SNAPSHOTS[2]!)}`), l);
    assert.match(lines[4]!, /^fur: 600 frames from 600 files, 120\.0 MB in 12\.3 s .*\[finished\]$/);
    assert.equal(lines.length, 5);
  });

  test('a message repeated for many files: said once, then folded into one line with a count', () => {
    const t = tty(80);
    const r = renderer({ json: false, tty: false, stream: t.stream, statsMs: 0 });
    for (let i = 0; i < 5; i++) r.emit({ type: 'rejected', file: `f${i}.tif`, tag: 'bad-frame', message: `f${i}.tif: truncated` });
    r.emit({ ...done(SNAPSHOTS[2]!), rejected: 5, kept: Array.from({ length: 5 }, (_, i) => ({ file: `f${i}.tif`, tag: 'bad-frame', message: `f${i}.tif: truncated` })) } as RunEvent);
    r.end();
    const text = t.written();
    assert.equal(text.match(/^fur: kept f\d\.tif: truncated$/gm)?.length, 1);
    assert.match(text, /^fur: kept 4 more files for the same reason \(bad-frame\); -v lists each$/m);
    assert.match(text, /^fur: 5 files kept in place, not uploaded:$/m);
    assert.match(text, /, 5 files kept because they could not be used \[finished\]$/m);
  });
});
