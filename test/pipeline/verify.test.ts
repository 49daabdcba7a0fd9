/**
 * `fur verify`: equal when the destination holds every source frame unchanged, different when one
 * stored byte changed (named by file and frame), missing when a source is not stored; exit 0 only
 * when nothing differs and nothing is missing.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cameraFileName, expectedFrame, runCamera } from '../../src/source/camera.js';
import { cli, DEST_KINDS, openDest, readFlags, scratch, writeFrames, type Capture, type Dest, type DestKind, type Method } from './helpers.js';

const C: Capture = { format: 'tiff', dtype: 'uint8', shape: [24, 32, 3], seed: 61, frames: 10 };

async function uploaded(t: Parameters<typeof scratch>[0], kind: DestKind, method: Method, extra: string[] = []): Promise<{ cam: string; dest: Dest; url: string; flags: string[] }> {
  const cam = await scratch(t, 'fur-camera-');
  const dest = await openDest(kind, t);
  await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: C.shape, seed: C.seed, frames: C.frames });
  const url = dest.url(method, 'run');
  const flags = ['--method', method, ...dest.flags];
  const r = await cli(['upload', cam, url, '--batch', '4', ...readFlags(C), ...flags, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return { cam, dest, url, flags };
}

/** Flips one byte of a stored file in place. */
async function corrupt(path: string, at: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[at] = bytes[at]! ^ 0x5a;
  await writeFile(path, bytes);
}

const report = (r: { stderr: string }) => /fur verify: (\d+) equal, (\d+) different, (\d+) files missing at the destination, (\d+) remote frames without a local source/.exec(r.stderr)?.slice(1).map(Number);

describe('verify SRC DEST', () => {
  for (const kind of DEST_KINDS) {
    test(`files → ${kind}: equal, then one remote byte changed (different), then a remote file gone (missing)`, async (t) => {
      const { cam, dest, url, flags } = await uploaded(t, kind, 'files');
      let r = await cli(['verify', cam, url, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(report(r), [10, 0, 0, 0]);

      const victim = join(dest.local('files', 'run'), cameraFileName(4, 'tiff'));
      await corrupt(victim, (await readFile(victim)).length - 100);
      r = await cli(['verify', cam, url, ...flags]);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(report(r), [9, 1, 0, 0]);
      assert.match(r.stderr, /differs: frame000004\.tif/);

      await rm(join(dest.local('files', 'run'), cameraFileName(7, 'tiff')));
      r = await cli(['verify', cam, url, ...flags]);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(report(r), [8, 1, 1, 0]);
      assert.match(r.stderr, /missing: frame000007\.tif/);
    });
  }

  for (const method of ['append', 'batches'] as const) {
    test(`${method}: equal; a changed frame byte in the HDF5 file is found by frame; a new local file is missing`, async (t) => {
      const { cam, dest, url, flags } = await uploaded(t, 'sftp', method);
      let r = await cli(['verify', cam, url, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(report(r), [10, 0, 0, 0]);

      // frames are stored as they are (plus Fletcher-32 in append): find frame 5's bytes and change one
      const file = method === 'append' ? dest.local(method, 'run') : join(dest.local(method, 'run'), 'frame000005.h5');
      const at = (await readFile(file)).indexOf(Buffer.from(expectedFrame(C.seed, 5, 'uint8', C.shape)));
      assert.ok(at > 0, 'frame 5 stored as it was written');
      await corrupt(file, at + 1000);
      r = await cli(['verify', cam, url, ...flags]);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(report(r), [9, 1, 0, 0]);
      assert.match(r.stderr, /differs: frame000006\.tif frame 0/);
      // append checksums each chunk by default: the chunk holding rows 4-7 is named as damaged too
      if (method === 'append') assert.match(r.stderr, /checksum failed: \S+ \/data rows 4-7 /);
      else assert.doesNotMatch(r.stderr, /checksum failed/);

      await writeFrames(cam, C, 10, 11);
      r = await cli(['verify', cam, url, ...flags]);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(report(r), [9, 1, 1, 0]);
      assert.match(r.stderr, /missing: frame000011\.tif/);
    });
  }

  test('after --delete-source, stored frames without a local source are counted apart, not as errors', async (t) => {
    const { cam, url, flags } = await uploaded(t, 'file', 'append', ['--delete-source']);
    const r = await cli(['verify', cam, url, ...flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(report(r), [0, 0, 0, 10]);
  });
});

describe('verify DEST (the frame hashes recorded at upload)', () => {
  for (const method of ['append', 'batches'] as const) {
    test(`${method}: equal, then a changed byte is found without the sources`, async (t) => {
      const { dest, url, flags } = await uploaded(t, 'file', method, ['--delete-source']);
      let r = await cli(['verify', url, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(report(r)?.slice(0, 3), [10, 0, 0]);
      const file = method === 'append' ? dest.local(method, 'run') : join(dest.local(method, 'run'), 'frame000009.h5');
      // every copy of the frame's bytes: space a commit left unused may hold an earlier one
      const frame = Buffer.from(expectedFrame(C.seed, 8, 'uint8', C.shape));
      const bytes = await readFile(file);
      const copies: number[] = [];
      for (let at = bytes.indexOf(frame); at >= 0; at = bytes.indexOf(frame, at + 1)) copies.push(at);
      assert.ok(copies.length > 0);
      for (const at of copies) await corrupt(file, at + 7);
      r = await cli(['verify', url, ...flags]);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(report(r)?.slice(0, 3), [9, 1, 0]);
      assert.match(r.stderr, /differs: frame000009\.tif frame 0/);
      if (method === 'append') assert.match(r.stderr, /checksum failed: \S+ \/data rows 8-9 /);
    });
  }
});
