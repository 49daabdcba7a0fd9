/**
 * A `batches` run first reads what earlier runs stored: the frame names inside each finished batch
 * file. A read that fails there (a lost connection) must stop the opening — to be retried — and
 * never count as "this file is not fur's": that made every later batch of a resumed run stop with
 * a false "already exists and holds other frames" (seen over FTPS against pyftpdlib).
 * The reading is told file by file (a slow server made it last minutes without a word); leftover
 * temporaries are the sweep's (sweep.ts), not read as batch files.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { FurError, isFurError } from '../../src/errors.js';
import { BatchesTarget, type ScanProgress } from '../../src/pipeline/batches.js';
import { DEFAULTS } from '../../src/pipeline/options.js';
import type { Destination, RemoteFile } from '../../src/transport/destination.js';
import { FileDestination } from '../../src/transport/file.js';
import { cli, openDest, readFlags, scratch, writeFrames, type Capture } from './helpers.js';

const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [12, 10, 3], seed: 51, frames: 20 };
const options = { ...DEFAULTS, method: 'batches' as const, batchFrames: 7 };

/** The destination, with the first read of `name` failing as a lost connection does. */
function losingOnce(dest: Destination, name: string): Destination {
  let lost = false;
  return Object.assign(Object.create(dest) as Destination, {
    async openRead(path: string): Promise<RemoteFile> {
      const file = await dest.openRead(path);
      if (lost || !path.endsWith(name)) return file;
      return Object.assign(Object.create(file) as RemoteFile, {
        read: async () => {
          lost = true;
          throw new FurError('connection-lost', `read ${path}: connection lost (ECONNRESET)`, { path });
        },
      });
    },
  });
}

/** A local destination holding the capture as three batch files (7 + 7 + 6 frames) in `run`. */
async function stored(t: Parameters<typeof scratch>[0]): Promise<{ dest: Destination; dir: string }> {
  const cam = await scratch(t, 'fur-camera-');
  const remote = await openDest('file', t);
  await writeFrames(cam, c, 0, c.frames);
  const r = await cli(['upload', cam, remote.url('batches', 'run'), '--method', 'batches', '--batch', '7', ...readFlags(c)]);
  assert.equal(r.code, 0, r.stderr);
  return { dest: await FileDestination.open(remote.root), dir: remote.local('batches', 'run') };
}

test('batches: a read that fails while reading what is stored stops the opening; it is not taken for a file of someone else', async (t) => {
  const { dest } = await stored(t);

  const healthy = await BatchesTarget.open(dest, 'run', options);
  assert.equal(healthy.committed.size, 20, 'every stored frame is found');

  await assert.rejects(BatchesTarget.open(losingOnce(dest, 'frame000008.h5'), 'run', options), (e) => isFurError(e, 'connection-lost'));
});

test('batches: each stored batch file read is told; leftover temporaries are not batch files (the sweep removes them)', async (t) => {
  const { dest, dir } = await stored(t);
  // what a run killed mid-batch leaves: a batch file and a sidecar under temporary names
  await writeFile(join(dir, 'frame000015.h5.fur-partial'), 'half a batch');
  await writeFile(join(dir, '.frame000015.h5.kerchunk.json.fur-partial'), '{');
  const steps: ScanProgress[] = [];
  const target = await BatchesTarget.open(dest, 'run', options, (s) => steps.push(s));
  assert.equal(target.committed.size, 20);
  // three batch files, one step each after the start
  assert.deepEqual(steps.map((s) => [s.done, s.total]), [[0, 3], [1, 3], [2, 3], [3, 3]]);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.fur-partial')).length, 2);
});
