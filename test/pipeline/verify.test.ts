/**
 * `fur verify`: equal when the destination holds every source frame unchanged, different when one
 * stored byte changed (named by file and frame), missing when a source is not stored; exit 0 only
 * when nothing differs and nothing is missing.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { H5File } from '../../src/hdf5/index.js';
import { appendBlocks, createFrameDatasets } from '../../src/pipeline/layout.js';
import { DEFAULTS } from '../../src/pipeline/options.js';
import { verify } from '../../src/pipeline/verify.js';
import { cameraFileName, expectedFrame, runCamera } from '../../src/source/camera.js';
import type { Destination, RemoteFile } from '../../src/transport/destination.js';
import { FileDestination } from '../../src/transport/file.js';
import {
  assertCapture, cli, DEST_KINDS, furBin, localFrames, openDest, readFlags, readStored, scratch, writeFrames, type Capture, type Dest, type DestKind, type Method,
} from './helpers.js';

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

const report = (r: { stderr: string }) => /fur verify: (\d+) equal, (\d+) different, (\d+) files? missing at the destination(?:, (\d+) remote frames? without a local source| \(no sources given: each frame compared with the SHA-256 recorded when it was stored\))/.exec(r.stderr)?.slice(1).filter((x) => x !== undefined).map(Number);

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
      // (by where the frames are: /data links to /entry/data/data)
      if (method === 'append') assert.match(r.stderr, /checksum failed: \S+ \/entry\/data\/data rows 4-7 /);
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

/** A destination whose reads are recorded: [offset, length] of each. */
function recordingReads(dest: Destination): { dest: Destination; reads: [number, number][] } {
  const reads: [number, number][] = [];
  const wrap = (f: RemoteFile): RemoteFile => new Proxy(f, {
    get(target, prop, receiver) {
      if (prop === 'read') return (offset: number, length: number) => { reads.push([offset, length]); return target.read(offset, length); };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    reads,
    dest: new Proxy(dest, {
      get(target, prop, receiver) {
        if (prop === 'openRead') return async (path: string) => wrap(await target.openRead(path));
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }),
  };
}

describe('verify reads what it compares', () => {
  for (const method of ['append', 'batches'] as const) {
    test(`${method}: each stored chunk is read once, not once per frame in it`, async (t) => {
      // 10 frames of 24x32x3 in chunks of 5: two chunks (append; batches of 10 make one file)
      const { cam, dest } = await uploaded(t, 'file', method, ['--chunk-frames', '5', '--batch', '10']);
      const { dest: counted, reads } = recordingReads(await FileDestination.open(dest.root));
      const frameBytes = C.shape.reduce((a, b) => a * b, 1);
      const r = await verify({ sourceDir: cam, pattern: 'frame*.tif', dest: counted, destPath: method === 'append' ? 'run.h5' : 'run', method, dataset: '/data', read: {} });
      assert.equal(r.equal, 10);
      assert.deepEqual([r.different, r.missing, r.remoteOnly], [[], [], 0]);
      // a chunk read is one read of its five frames (and its checksum, in append)
      const chunkReads = reads.filter(([, n]) => n === 5 * frameBytes || n === 5 * frameBytes + 4);
      assert.equal(chunkReads.length, 2, `chunk reads: ${JSON.stringify(chunkReads)}`);
    });
  }

  test('a frame stored twice is equal only if both copies are: a wrong second copy is named', async (t) => {
    const { cam, dest, url, flags } = await uploaded(t, 'file', 'batches', ['--batch', '10']);
    // another batch file (as a second run writing the same folder would leave) holding other
    // bytes under frame000003.tif's name; it sorts before the real one
    const fd = await FileDestination.open(dest.root);
    const file = await H5File.create(await fd.openWrite('run/a.h5', { truncate: true }), { metaReserve: 64 << 10 });
    file.setAttr('/', 'fur_method', 'batches');
    const o = { ...DEFAULTS, method: 'batches' as const };
    const ds = createFrameDatasets(file, { dtype: 'uint8', shape: C.shape }, o);
    await appendBlocks(ds, [{ file: 'elsewhere', name: cameraFileName(3, 'tiff'), dtype: 'uint8', shape: C.shape, count: 1, data: expectedFrame(C.seed + 1, 2, 'uint8', C.shape), mtimeMs: 0 }]);
    await file.commit();
    await file.close();
    const r = await cli(['verify', cam, url, ...flags]);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(report(r), [9, 1, 0, 0]);
    assert.match(r.stderr, /differs: frame000003\.tif frame 0/);
  });
});

describe('verify DEST (the frame hashes recorded at upload)', () => {
  test('two uploads with --delete-source from folders of the same names into one file: what verify calls equal is one run\'s frames, whole', async (t) => {
    // the case: over file:// one run exited 0, deleted its 300 files, 200 of its rows held
    // the other run's pixels (and that run's hashes), and verify said "300 equal"
    const dest = await openDest('file', t);
    const caps: Capture[] = [{ ...C, seed: 91, frames: 60 }, { ...C, seed: 92, frames: 60 }];
    const cams = [await scratch(t, 'fur-camera-a-'), await scratch(t, 'fur-camera-b-')];
    await Promise.all(cams.map((cam, i) => writeFrames(cam, caps[i]!, 0, 60)));
    const url = dest.url('append', 'run');
    const runs = await Promise.all(cams.map((cam) => furBin(['upload', cam, url, '--batch', '10', '--delete-source', ...readFlags(C)])));
    const wrote = runs.findIndex((r) => r.code === 0);
    assert.ok(wrote >= 0, runs.map((r) => r.stderr).join('\n'));
    const other = 1 - wrote;
    // the other was refused (1), or came after and found every name taken by other frames (3)
    assert.ok([1, 3].includes(runs[other]!.code!), runs[other]!.stderr);
    assertCapture(await readStored(dest, 'append', 'run'), caps[wrote]!);
    assert.deepEqual(await localFrames(cams[wrote]!), []);
    assert.equal((await localFrames(cams[other]!)).length, 60, 'the other run deleted nothing');
    const r = await cli(['verify', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(report(r)?.slice(0, 2), [60, 0]);
    assert.match(r.stderr, /compared with the SHA-256 recorded when it was stored/);
  });

  for (const method of ['append', 'batches'] as const) {
    test(`${method}: equal, then a changed byte is found without the sources`, async (t) => {
      const { dest, url, flags } = await uploaded(t, 'file', method, ['--delete-source']);
      let r = await cli(['verify', url, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(report(r), [10, 0, 0]);
      // with no local source there is nothing to count frames without one against
      assert.doesNotMatch(r.stderr, /without a local source/);
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
      if (method === 'append') assert.match(r.stderr, /checksum failed: \S+ \/entry\/data\/data rows 8-9 /);
    });
  }
});
