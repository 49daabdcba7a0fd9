/**
 * The real binary (`node bin/fur.js`) as a lab runs it: --json event lines, Ctrl-C that drains
 * what is queued, `fur demo`, and `fur verify --json`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cameraFileName, runCamera } from '../../src/source/camera.js';
import {
  assertCapture, FUR_BIN, furBin, jsonLines, localFrames, METHODS, openDest, readFlags, readStored, scratch, until, watchFlags, writeFrames,
  type Capture,
} from '../pipeline/helpers.js';

describe('--json', () => {
  for (const method of METHODS) {
    test(`${method}: watch --json prints one JSON object per line: start, commits, deletes, done`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [12, 14], seed: 71, frames: 25 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('sftp', t);
      const camera = runCamera({ dir: cam, format: 'tiff', dtype: 'uint16', shape: c.shape, seed: c.seed, frames: c.frames, fps: 200, write: 'rename', stopFile: 'capture.done' });
      const r = await furBin(['watch', cam, dest.url(method, 'j'), '--method', method, '--batch', '10', '--batch-seconds', '600', '--delete-source', '--json',
        ...readFlags(c), ...watchFlags(), ...dest.flags]);
      await camera;
      assert.equal(r.code, 0, r.stderr);
      const events = jsonLines(r.stdout);
      assert.equal(events[0]!.type, 'start');
      assert.equal(events[0]!.method, method);
      assert.equal(events.at(-1)!.type, 'done');
      const doneEvent = events.at(-1)!;
      assert.equal(doneEvent.frames, c.frames);
      assert.equal(doneEvent.files, c.frames);
      assert.equal(doneEvent.endReason, 'stop-file');
      const commits = events.filter((e) => e.type === 'commit');
      assert.equal(commits.reduce((n, e) => n + (e.frames as number), 0), c.frames, 'commit events add up');
      if (method !== 'files') assert.deepEqual(commits.map((e) => e.totalFrames), [10, 20, 25]);
      assert.equal(events.filter((e) => e.type === 'deleted').reduce((n, e) => n + (e.files as number), 0), c.frames, 'deleted events add up');
      for (const e of events) assert.equal(typeof e.time, 'string', 'each event is timestamped');
      assert.equal(r.stderr, '', 'nothing else on stderr');
      assertCapture(await readStored(dest, method, 'j'), c);
      assert.deepEqual(await localFrames(cam), []);
    });
  }

  test('a skipped file is a "rejected" event with the file and the reason', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [8, 8], seed: 72, frames: 4 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await writeFrames(cam, c, 0, 4);
    await writeFile(join(cam, cameraFileName(5, 'tiff')), '');
    const r = await furBin(['upload', cam, dest.url('append', 'j'), '--on-mismatch', 'skip', '--json']);
    assert.equal(r.code, 3, r.stderr);
    const rejected = jsonLines(r.stdout).filter((e) => e.type === 'rejected');
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]!.file, join(cam, cameraFileName(5, 'tiff')));
    assert.equal(rejected[0]!.tag, 'empty-file');
  });
});

describe('Ctrl-C', () => {
  for (const method of METHODS) {
    test(`${method}: SIGINT during a watch commits what is queued, exits 0, and leaves every uncommitted file in place`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [16, 16, 3], seed: 73, frames: 100_000 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('sftp', t);
      const stopCamera = new AbortController();
      const camera = runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames, fps: 100, write: 'rename', signal: stopCamera.signal });
      const child = spawn(process.execPath, [FUR_BIN, 'watch', cam, dest.url(method, 'int'), '--method', method, '--batch', '5', '--delete-source',
        '--completion', 'rename', '--json', ...readFlags(c), ...dest.flags], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
      child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
      const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
      try {
        await until(() => (out.match(/"type":"commit"/g) ?? []).length >= 2, 60_000, 'two commits');
        child.kill('SIGINT');
        const code = await exited;
        assert.equal(code, 0, err);
      } finally {
        child.kill('SIGKILL');
        stopCamera.abort();
      }
      const written = (await camera).frames;
      assert.match(err, /finishing what is queued/);
      const doneEvent = jsonLines(out).at(-1)!;
      assert.equal(doneEvent.type, 'done');
      assert.equal(doneEvent.endReason, 'stopped');
      const frames = doneEvent.frames as number;
      assertCapture(await readStored(dest, method, 'int'), { ...c, frames });
      assert.deepEqual(await localFrames(cam), Array.from({ length: written - frames }, (_, k) => cameraFileName(frames + 1 + k, 'tiff')),
        'every frame is either stored (and deleted) or still local');
    });
  }
});

describe('fur demo', () => {
  for (const method of METHODS) {
    test(`${method}: ends with a verified summary and exit 0`, async () => {
      const r = await furBin(['demo', '--frames', '40', '--shape', '48x64x3', '--fps', '200', '--method', method]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /fur demo: OK — 40\/40 frames verified equal to the camera's, 0 local files left/);
    });
  }

  test('--json: run events, then one demo result', async () => {
    const r = await furBin(['demo', '--frames', '30', '--shape', '20x20', '--dtype', 'uint16', '--fps', '200', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const events = jsonLines(r.stdout);
    const result = events.at(-1)!;
    assert.equal(result.type, 'demo');
    assert.equal(result.ok, true);
    assert.equal(result.verified, 30);
    assert.equal(result.localFilesLeft, 0);
    assert.ok(events.some((e) => e.type === 'commit'));
  });
});

test('verify --json prints one report object', async (t) => {
  const c: Capture = { format: 'npy', dtype: 'float32', shape: [5, 6], seed: 74, frames: 6 };
  const cam = await scratch(t, 'fur-camera-');
  const dest = await openDest('sftp', t);
  await writeFrames(cam, c, 0, 6);
  assert.equal((await furBin(['upload', cam, dest.url('batches', 'v'), '--method', 'batches', '--batch', '4', ...dest.flags])).code, 0);
  await writeFrames(cam, c, 6, 7);
  const r = await furBin(['verify', cam, dest.url('batches', 'v'), '--method', 'batches', '--json', ...dest.flags]);
  assert.equal(r.code, 3, r.stderr);
  const lines = jsonLines(r.stdout);
  assert.equal(lines.length, 1);
  const report = lines[0]!;
  assert.equal(report.type, 'verify');
  assert.equal(report.ok, false);
  assert.equal(report.equal, 6);
  assert.deepEqual(report.missing, [cameraFileName(7, 'npy')]);
  assert.deepEqual(report.different, []);
});
