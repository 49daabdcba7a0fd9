/**
 * The three methods × the two npm-tier destinations × the camera formats: a simulated camera
 * writes frames while `fur watch` runs (in this process, through the CLI), and every frame is
 * then read back by h5wasm (or, for `files`, by fur's readers from the stored copy) and compared
 * with what the camera wrote.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { runCamera } from '../../src/source/camera.js';
import { dataset } from '../support/h5wasm.js';
import {
  assertCapture, cli, DEST_KINDS, frameDtype, localFrames, METHODS, numpyDtype, openDest, readFlags, readStored, scratch,
  watchFlags, type Capture,
} from './helpers.js';

const CAPTURES: Array<Capture & { label: string }> = [
  { label: 'tiff uint8 32x48x3', format: 'tiff', dtype: 'uint8', shape: [32, 48, 3], seed: 3, frames: 40 },
  { label: 'tiff uint16 24x20, 3 pages per file', format: 'tiff', dtype: 'uint16', shape: [24, 20], seed: 4, frames: 30, framesPerFile: 3 },
  { label: 'npy float32 16x12', format: 'npy', dtype: 'float32', shape: [16, 12], seed: 5, frames: 30 },
  { label: 'raw int16 10x14 (--dtype/--shape)', format: 'raw', dtype: 'int16', shape: [10, 14], seed: 6, frames: 30 },
  { label: 'jpeg → bytes (vlen)', format: 'jpeg', dtype: 'uint8', shape: [40, 50], seed: 7, frames: 30 },
];

const BATCH = 8;

/** How the run groups files into batches of ≥ BATCH frames (whole files only). */
function batchSizes(c: Capture): number[] {
  const per = c.framesPerFile ?? 1;
  const sizes: number[] = [];
  let open = 0;
  for (let left = c.frames; left > 0; left -= per) {
    open += Math.min(per, left);
    if (open >= BATCH) { sizes.push(open); open = 0; }
  }
  if (open) sizes.push(open);
  return sizes;
}

for (const method of METHODS) {
  for (const kind of DEST_KINDS) {
    describe(`${method} → ${kind}`, () => {
      for (const c of CAPTURES) {
        test(`watch a camera writing ${c.frames} frames, ${c.label}, --delete-source`, async (t) => {
          const cam = await scratch(t, 'fur-camera-');
          const dest = await openDest(kind, t);
          const camera = runCamera({ dir: cam, format: c.format, dtype: c.format === 'jpeg' ? undefined : c.dtype as never, shape: c.shape, seed: c.seed,
            frames: c.frames, framesPerFile: c.framesPerFile, fps: 400, write: 'rename', stopFile: 'capture.done' });
          const r = await cli(['watch', cam, dest.url(method, 'run1'), '--method', method, '--batch', String(BATCH), '--batch-seconds', '60',
            '--delete-source', ...readFlags(c), ...watchFlags(), ...dest.flags]);
          await camera;
          assert.equal(r.code, 0, r.stderr);
          const files = Math.ceil(c.frames / (c.framesPerFile ?? 1));
          // `files` copies files without decoding them, so it counts each file as one frame
          const frames = method === 'files' ? files : c.frames;
          assert.match(r.lastLine, new RegExp(`^fur: ${frames} frames from ${files} files, .* \\[stop-file\\]$`));

          const stored = await readStored(dest, method, 'run1', c.format === 'raw' ? { dtype: c.dtype, shape: c.shape } : {});
          assertCapture(stored, c);
          assert.deepEqual(await localFrames(cam), [], 'every committed source deleted');

          if (method === 'files') {
            assert.deepEqual((await readdir(dest.local(method, 'run1'))).filter((n) => n.includes('.fur-partial')), [], 'no temporary uploads left');
            return;
          }
          for (const doc of stored.docs) {
            const data = dataset(doc, '/data');
            assert.equal(data.dtype, numpyDtype(frameDtype(c)));
            if (c.format === 'jpeg') {
              assert.equal(data.base, '|u1', 'binary layout: vlen of uint8');
              assert.equal(data.shape!.length, 1);
            } else {
              assert.deepEqual(data.shape!.slice(1), c.shape);
              assert.deepEqual(data.maxshape, [null, ...c.shape]);
            }
            assert.equal(doc.objects['/']!.kind === 'group' && (doc.objects['/'] as { attrs: Record<string, { value: unknown }> }).attrs['fur_method']!.value, method);
          }
          if (method === 'batches') {
            const sizes = stored.docs.map((d) => dataset(d, '/data').shape![0]);
            assert.deepEqual(sizes, batchSizes(c), 'batch files hold whole source files, ≥ --batch frames, the last one partial');
            const files = (await readdir(dest.local(method, 'run1'))).sort();
            assert.equal(files[0], 'frame000001.h5', 'a batch file is named after its first source file');
          }
        });
      }
    });
  }
}

describe('without --delete-source', () => {
  for (const method of METHODS) {
    test(`${method}: every source file stays`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [16, 16, 3], seed: 9, frames: 20 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      const camera = runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames, fps: 400, write: 'rename', stopFile: 'capture.done' });
      const r = await cli(['watch', cam, dest.url(method, 'run'), '--method', method, '--batch', '6', ...readFlags(c), ...watchFlags(), ...dest.flags]);
      const { files } = await camera;
      assert.equal(r.code, 0, r.stderr);
      assertCapture(await readStored(dest, method, 'run'), c);
      assert.deepEqual(await localFrames(cam), files.map((f) => f.slice(cam.length + 1)));
      assert.deepEqual((await readdir(cam)).filter((n) => n === 'capture.done'), ['capture.done'], 'the stop file is not a frame and stays');
    });
  }
});

test('quiet-period completion: a file written in two steps is taken only whole', async (t) => {
  const c: Capture = { format: 'npy', dtype: 'uint16', shape: [20, 20], seed: 12, frames: 12 };
  const cam = await scratch(t, 'fur-camera-');
  const dest = await openDest('sftp', t);
  const camera = runCamera({ dir: cam, format: 'npy', dtype: 'uint16', shape: c.shape, seed: c.seed, frames: c.frames, fps: 50,
    write: 'two-step', pauseMs: 40, stopFile: 'capture.done' });
  const r = await cli(['watch', cam, dest.url('append', 'q'), '--quiet-period', '0.3', '--stop-file', 'capture.done', '--batch', '5',
    '--delete-source', '--pattern', 'frame*.npy', ...dest.flags]);
  await camera;
  assert.equal(r.code, 0, r.stderr);
  assertCapture(await readStored(dest, 'append', 'q'), c);
  assert.deepEqual(await localFrames(cam), []);
});
