import assert from 'node:assert/strict';
import { mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FIRST_REQUEST, get, httpBytes } from '../../src/index/get.js';
import { destinationBytes } from '../../src/index/remote.js';
import { DEFAULTS } from '../../src/pipeline/options.js';
import { Progress } from '../../src/pipeline/progress.js';
import { run } from '../../src/pipeline/run.js';
import { expectedFrame, runCamera } from '../../src/source/camera.js';
import { FileDestination } from '../../src/transport/file.js';
import { startRangeServer, type RangeServer } from '../support/http-range.js';

const SHAPE = [64, 64, 3];
const FRAMES = 200;
const SEED = 11;
const FRAME_BYTES = 64 * 64 * 3;

function frames(a: number, b: number): Buffer {
  return Buffer.concat(Array.from({ length: b - a }, (_, i) => Buffer.from(expectedFrame(SEED, a + i, 'uint8', SHAPE))));
}

describe('fur get: range reads of a fur file', () => {
  let dir: string;
  let server: RangeServer;
  let size: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fur-get-'));
    const cam = join(dir, 'cam');
    const out = join(dir, 'out');
    await mkdir(cam);
    await mkdir(out);
    await runCamera({ dir: cam, frames: FRAMES, format: 'npy', dtype: 'uint8', shape: SHAPE, seed: SEED });
    const dest = await FileDestination.open(out);
    // batches of 20 frames → chunks of 20 frames (245 KB): 10 chunks
    await run({ sourceDir: cam, pattern: '*.npy', dest, destPath: 'run.h5', progress: new Progress(() => {}), options: { ...DEFAULTS, batchFrames: 20 } });
    size = (await stat(join(out, 'run.h5'))).size;
    server = await startRangeServer(out);
  });
  after(async () => server.close());

  test('one frame: at most 3 range requests (the metadata region, then its chunk)', async () => {
    server.reset();
    const r = await get(httpBytes(server.url('run.h5')), '/data', '57');
    assert.deepEqual(r.shape, [1, ...SHAPE]);
    assert.ok(Buffer.from(r.data).equals(frames(57, 58)), 'frame 57 equals what the camera wrote');
    assert.equal(r.stats.requests, server.stats.requests, 'fur counts what the server served');
    assert.ok(server.stats.requests <= 3, `${server.stats.requests} requests`);
    assert.equal(server.stats.requests, 2);
  });

  test('a 10-frame slice fetches only the chunk holding those frames, plus metadata', async () => {
    server.reset();
    const r = await get(httpBytes(server.url('run.h5')), '/data', '100:110');
    assert.ok(Buffer.from(r.data).equals(frames(100, 110)));
    const chunk = 20 * FRAME_BYTES;
    assert.ok(server.stats.bytes <= Math.min(FIRST_REQUEST, size) + chunk, `${server.stats.bytes} bytes`);
    assert.equal(server.stats.requests, 2);
  });

  test('adjacent chunks are fetched in one request', async () => {
    server.reset();
    const r = await get(httpBytes(server.url('run.h5')), '/data', '20:80');
    assert.ok(Buffer.from(r.data).equals(frames(20, 80)));
    assert.equal(server.stats.requests, 2, 'metadata + one merged range for 3 chunks');
    assert.ok(server.stats.bytes <= Math.min(FIRST_REQUEST, size) + 3 * 20 * FRAME_BYTES + (64 << 10) * 2);
  });

  test('when the slice is most of the file, the whole file comes in one request', async () => {
    server.reset();
    const r = await get(httpBytes(server.url('run.h5')), '/data', '10:190');
    assert.ok(Buffer.from(r.data).equals(frames(10, 190)));
    assert.equal(server.stats.requests, 2);
    assert.equal(server.stats.bytes, Math.min(FIRST_REQUEST, size) + size);
  });

  test('sub-frame selections and per-frame datasets', async () => {
    const r = await get(httpBytes(server.url('run.h5')), '/data', '3,10:20,5:9,2');
    const f = frames(3, 4);
    const want: number[] = [];
    for (let y = 10; y < 20; y++) for (let x = 5; x < 9; x++) want.push(f[(y * 64 + x) * 3 + 2]);
    assert.deepEqual([...r.data], want);
    const names = await get(httpBytes(server.url('run.h5')), '/entry/data/frame_name', '0:3');
    assert.deepEqual(names.items!.map((b) => Buffer.from(b).toString()), ['frame000001.npy', 'frame000002.npy', 'frame000003.npy']);
  });

  test('the same through a destination (file://): values equal', async () => {
    const dest = await FileDestination.open(join(dir, 'out'));
    const r = await get(destinationBytes(dest, 'run.h5'), '/data', '150:152');
    assert.ok(Buffer.from(r.data).equals(frames(150, 152)));
    assert.equal(r.stats.requests, 2);
  });

  test('a bad slice is refused with a clear message', async () => {
    await assert.rejects(get(httpBytes(server.url('run.h5')), '/data', '0:10:2'), /steps are not supported/);
    await assert.rejects(get(httpBytes(server.url('run.h5')), '/data', '500'), /outside axis 0 of length 200/);
    await assert.rejects(get(httpBytes(server.url('run.h5')), '/nope'), /no dataset \/nope/);
  });
});
