/**
 * What an operator sees: the real `fur` binary in a pseudo-terminal of 60 and of 200 columns
 * (util-linux `script`, the window size set with `stty`), during an `upload` paced by --bwlimit and
 * a `watch` of a camera writing at its frame rate, and once with stderr not a terminal.
 *
 * The terminal's output is replayed on an emulated screen (test/support/terminal.ts): no line is
 * wider than the terminal, and at the end the summary stands where the live line was. Each live
 * line's percentage is checked against the destination file's size when the line arrived (its
 * share of the final size), and its ETA against when the run actually finished: both within 10%
 * (of 100 points, and of the run's duration). The frames stored are read back with h5wasm.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { expectedFrame, runCamera } from '../../src/source/camera.js';
import { FUR_BIN, readH5 } from '../pipeline/helpers.js';
import { screen } from '../support/terminal.js';
import { folderBytes } from './support/folder.js';

const work = mkdtempSync(join(tmpdir(), 'fur-progress-pty-'));
after(() => rmSync(work, { recursive: true, force: true }));

const SHAPE = [400, 1000];
const FRAME_BYTES = SHAPE[0]! * SHAPE[1]! * 2;
const READ = ['--dtype', 'uint16', '--shape', SHAPE.join('x')];

interface Chunk { t: number; text: string; destSize: number }
interface Ran { code: number | null; chunks: Chunk[]; started: number; output: string }

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * `fur ARGS` in a pseudo-terminal `columns` wide, run in `cwd`; every chunk of output with when it
 * arrived and the size of `dest` then. stdin stays open until fur exits (script ends at its EOF).
 */
function inPty(args: string[], columns: number, cwd: string, dest: string): Promise<Ran> {
  const command = `stty cols ${columns} rows 40 && exec ${quote(process.execPath)} ${[FUR_BIN, ...args].map(quote).join(' ')}`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm' } });
    const chunks: Chunk[] = [];
    const size = () => folderBytes(dirname(dest));
    child.stdout.on('data', (d: Buffer) => chunks.push({ t: performance.now(), text: d.toString('utf8'), destSize: size() }));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, chunks, started, output: chunks.map((c) => c.text).join('') });
    });
  });
}

/** seconds from the status line's 7s, 1m05s, 2h03m */
function seconds(eta: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(eta);
  assert.ok(m, eta);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** Every live line drawn, with when it arrived and the destination's size then. */
function liveLines(r: Ran): { t: number; text: string; destSize: number }[] {
  const out: { t: number; text: string; destSize: number }[] = [];
  for (const c of r.chunks) {
    for (const m of c.text.matchAll(/\r([^\r\n\x1b]+)\x1b\[K/g)) out.push({ t: c.t, text: m[1]!, destSize: c.destSize });
  }
  return out;
}

/** The checks every run in a terminal must pass; returns how many lines had a percentage and an ETA. */
function checkTerminal(r: Ran, columns: number, dest: string, summary: RegExp, etaFromSec: number): { percents: number; etas: number; percentOff: number; etaOff: number; worst: string } {
  assert.equal(r.code, 0, r.output);
  const sc = screen(r.output, columns);
  assert.deepEqual(sc.overflows, [], `no line wider than ${columns} columns`);
  const shown = sc.lines.filter((l) => l.trim() !== '');
  // fur breaks its lines between words to fit; a continuation is indented
  const said = shown.reduce<string[]>((acc, l) => (l.startsWith('  ') && acc.length ? [...acc.slice(0, -1), `${acc[acc.length - 1]} ${l.trim()}`] : [...acc, l]), []);
  assert.match(said[said.length - 1]!, summary, `the summary is the last line:\n${shown.join('\n')}`);
  assert.ok(shown.every((l) => !/ETA|%/.test(l)), `the live line is gone:\n${shown.join('\n')}`);
  // the chunk that completes the summary (it may arrive in pieces)
  let text = '';
  const finished = r.chunks.find((c) => /\[(finished|count)\]/.test(text += c.text))!.t;
  const duration = (finished - r.started) / 1000;
  const final = folderBytes(dirname(dest));
  const lines = liveLines(r);
  assert.ok(lines.length >= 5, `${lines.length} live lines`);
  let percents = 0;
  let etas = 0;
  // the largest differences seen: percentage points, and seconds of the predicted end
  let percentOff = 0;
  let etaOff = 0;
  let worst = '';
  for (const l of lines) {
    assert.ok(l.text.length < columns, `live line of ${l.text.length} in ${columns} columns: ${l.text}`);
    const p = /(\d+\.\d)%/.exec(l.text);
    if (p) {
      percents++;
      const actual = (100 * l.destSize) / final;
      if (Math.abs(Number(p[1]) - actual) > Math.abs(percentOff)) {
        percentOff = Number(p[1]) - actual;
        worst = `${p[1]}% at ${((l.t - r.started) / 1000).toFixed(1)} s, the destination ${l.destSize} of ${final} bytes`;
      }
      assert.ok(Math.abs(Number(p[1]) - actual) <= 10, `${p[1]}% shown when the destination held ${actual.toFixed(1)}%: ${l.text}`);
    }
    const e = / ETA (\S+)/.exec(l.text);
    // the current rate is of the last 5 s: an ETA is judged once that window is inside the steady run
    if (e && (l.t - r.started) / 1000 > etaFromSec) {
      etas++;
      const predicted = (l.t - r.started) / 1000 + seconds(e[1]!);
      if (Math.abs(predicted - duration) > Math.abs(etaOff)) etaOff = predicted - duration;
      assert.ok(Math.abs(predicted - duration) <= 0.1 * duration,
        `ETA ${e[1]} at ${((l.t - r.started) / 1000).toFixed(1)} s predicts the end at ${predicted.toFixed(1)} s; it came at ${duration.toFixed(1)} s`);
    }
  }
  return { percents, etas, percentOff: Number(percentOff.toFixed(2)), etaOff: Number(etaOff.toFixed(2)), worst };
}

const FILES = 100;

function finishedCapture(dir: string): Buffer[] {
  mkdirSync(dir);
  const frames: Buffer[] = [];
  for (let i = 0; i < FILES; i++) {
    const f = Buffer.from(expectedFrame(7, i, 'uint16', SHAPE));
    writeFileSync(join(dir, `frame${String(i).padStart(4, '0')}.raw`), f);
    frames.push(f);
  }
  return frames;
}

async function assertStored(dest: string, frames: Uint8Array[]): Promise<void> {
  const stored = await readH5(dest);
  assert.equal(stored.frames.length, frames.length);
  stored.frames.forEach((f, i) => assert.ok(Buffer.from(f).equals(frames[i]!), `frame ${i}`));
}

describe('progress in a terminal', { timeout: 600_000 }, () => {
  for (const columns of [60, 200]) {
    test(`upload in ${columns} columns, 80 MB at --bwlimit 4M`, async (t) => {
      const dir = mkdtempSync(join(work, 'upload-'));
      const frames = finishedCapture(join(dir, 'src'));
      mkdirSync(join(dir, 'dest'));
      const dest = join(dir, 'dest', 'out.h5');
      const r = await inPty(['upload', 'src', 'dest/out.h5', '--bwlimit', '4M', ...READ], columns, dir, dest);
      const seen = checkTerminal(r, columns, dest, /^fur: 100 frames from 100 files, .*\[finished\]$/, 6);
      assert.ok(seen.percents >= 5 && seen.etas >= 3, JSON.stringify(seen));
      t.diagnostic(`largest differences: ${seen.percentOff} percentage points, the end predicted ${seen.etaOff} s off (${seen.percents} percentages, ${seen.etas} ETAs judged; the largest: ${seen.worst})`);
      await assertStored(dest, frames);
    });

    test(`watch in ${columns} columns, a camera writing 4 MB/s, --count 100`, async (t) => {
      const dir = mkdtempSync(join(work, 'watch-'));
      mkdirSync(join(dir, 'cam'));
      mkdirSync(join(dir, 'dest'));
      const dest = join(dir, 'dest', 'out.h5');
      // one frame a chunk: a watch's commits (every --batch-seconds) then end on chunk boundaries, and
      // the file holds its frames and metadata only. With 10-frame chunks it also holds the two
      // tail slots partial chunks are published from (docs/hdf5-layout.md, Space): 16 MB of a 96 MB
      // file, which the destination's share counted as frames: the percentage shown was within 0.1
      // points of the share of the frames' bytes there, and up to 6.9 off the share of the file's
      const fur = inPty(['watch', 'cam', 'dest/out.h5', '--count', String(FILES), '--completion', 'rename', '--pattern', 'frame*.raw', '--chunk-frames', '1', ...READ], columns, dir, dest);
      const cam = await runCamera({ dir: join(dir, 'cam'), frames: FILES, format: 'raw', dtype: 'uint16', shape: SHAPE, fps: 5, seed: 7, write: 'rename' });
      assert.equal(cam.frames, FILES);
      const r = await fur;
      // fur starts a second or two after the camera and first catches up with the files already
      // written: the rate window holds that burst until about 10 s in
      const seen = checkTerminal(r, columns, dest, /^fur: 100 frames from 100 files, .*\[count\]$/, 10);
      assert.ok(seen.percents >= 5 && seen.etas >= 3, JSON.stringify(seen));
      t.diagnostic(`largest differences: ${seen.percentOff} percentage points, the end predicted ${seen.etaOff} s off (${seen.percents} percentages, ${seen.etas} ETAs judged; the largest: ${seen.worst})`);
      assert.match(r.output, /keeping up|ok · /);
      await assertStored(dest, Array.from({ length: FILES }, (_, i) => expectedFrame(7, i, 'uint16', SHAPE)));
    });
  }

  test('not a terminal: a timestamped progress line every --stats interval', async () => {
    const dir = mkdtempSync(join(work, 'stats-'));
    const frames = finishedCapture(join(dir, 'src'));
    const dest = join(dir, 'out.h5');
    const child = spawn(process.execPath, [FUR_BIN, 'upload', 'src', 'out.h5', '--bwlimit', '8M', '--stats', '1', ...READ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /\r|\x1b/, 'no redraws');
    const stamped = stderr.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z fur: /.test(l));
    assert.ok(stamped.length >= 5, `${stamped.length} timestamped lines:\n${stderr}`);
    const times = stamped.map((l) => Date.parse(l.slice(0, 24)));
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 1000, `one line per second at most: ${stamped.join('\n')}`);
    for (const l of stamped) assert.match(l, /\d+\.\d% · frames \d+ committed, \d+ seen of 100/);
    assert.match(stderr, /^fur: 100 frames from 100 files, .*\[finished\]$/m);
    await assertStored(dest, frames);
  });
});
