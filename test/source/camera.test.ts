import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { cameraFileName, expectedFrame, runCamera, type CameraFormat } from '../../src/source/camera.js';
import { frameAt } from '../../src/source/frame.js';
import { readFrames } from '../../src/source/readers/index.js';
import { tempDir } from './helpers.js';

test('file names are numbered from 1 with a format extension', () => {
  assert.equal(cameraFileName(1, 'tiff'), 'frame000001.tif');
  assert.equal(cameraFileName(12, 'npy', 'img_', 3), 'img_012.npy');
});

test('every format reads back as the expected frames, stacks included', async (t) => {
  const cases: [CameraFormat, object][] = [
    ['raw', { dtype: 'float32', shape: [6, 5], framesPerFile: 2 }],
    ['npy', { dtype: 'int16', shape: [4, 4], framesPerFile: 3 }],
    ['tiff', { dtype: 'uint8', shape: [5, 4, 3], framesPerFile: 2 }],
    ['tiff', { dtype: 'float32', shape: [3, 3] }],
    ['jpeg', { shape: [16, 16] }],
  ];
  for (const [format, extra] of cases) {
    const dir = await tempDir(t);
    const opts = { dir, format, frames: 5, seed: 11, ...extra } as Parameters<typeof runCamera>[0];
    const result = await runCamera(opts);
    assert.equal(result.frames, 5);
    assert.deepEqual((await readdir(dir)).sort(), result.files.map((f) => f.slice(dir.length + 1)).sort(), 'no temp files left');
    let index = 0;
    for (const file of result.files) {
      const block = await readFrames(file, { dtype: opts.dtype, shape: opts.shape, stack: format === 'npy' ? true : undefined });
      for (let i = 0; i < block.count; i++, index++) {
        const want = expectedFrame(11, index, format === 'jpeg' ? 'bytes' : (opts.dtype ?? 'uint16'), opts.shape ?? [64, 64]);
        assert.deepEqual(frameAt(block, i), want, `${format} frame ${index}`);
      }
    }
    assert.equal(index, 5, format);
  }
});

test('markers, stop file, two-step writes and abort', async (t) => {
  const dir = await tempDir(t);
  const r = await runCamera({ dir, format: 'raw', frames: 2, shape: [2, 2], write: 'two-step', pauseMs: 5, marker: '.done', stopFile: 'STOP' });
  assert.deepEqual((await readdir(dir)).sort(), ['STOP', 'frame000001.raw', 'frame000001.raw.done', 'frame000002.raw', 'frame000002.raw.done']);
  assert.equal(r.frames, 2);

  const dir2 = await tempDir(t);
  const ac = new AbortController();
  const seen: string[] = [];
  const r2 = await runCamera({ dir: dir2, format: 'raw', frames: 1000, fps: 200, shape: [2, 2], signal: ac.signal, stopFile: 'STOP',
    onFile: (p) => { seen.push(p); if (seen.length === 3) ac.abort(); } });
  assert.equal(r2.files.length, 3);
  assert.ok(!(await readdir(dir2)).includes('STOP'), 'an aborted capture writes no stop file');

  await assert.rejects(runCamera({ dir, format: 'tiff', frames: 1, shape: [5] }), (e) => isFurError(e, 'bad-setting'));
});
