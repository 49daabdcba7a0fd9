/** fur get against S3: the metadata region and one chunk, by range GETs on the object. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { expectedFrame } from '../../src/source/camera.js';
import { cli, readFlags, scratch, writeFrames, type Capture } from '../pipeline/helpers.js';
import { openS3Dest, useTestAwsEnv } from '../pipeline/s3-dest.js';

const C: Capture = { format: 'tiff', dtype: 'uint8', shape: [96, 128, 3], seed: 13, frames: 40 };

test('fur get s3://…: one frame of an append object in at most 3 requests, equal to the source', async (t) => {
  useTestAwsEnv();
  const cam = await scratch(t, 'fur-camera-');
  const out = await scratch(t, 'fur-get-');
  const d = await openS3Dest(t);
  await writeFrames(cam, C, 0, C.frames);
  const up = await cli(['upload', cam, d.url('append', 'g'), '--batch', '10', ...readFlags(C), ...d.flags]);
  assert.equal(up.code, 0, up.stderr);
  const before = d.server.log.length;
  const npy = join(out, 'f.npy');
  const r = await cli(['get', d.url('append', 'g'), '--slice', '23', '-o', npy, '--stats', ...d.flags]);
  assert.equal(r.code, 0, r.stderr);
  const reads = d.server.log.slice(before).filter((l) => l.key === 'g.h5');
  assert.ok(reads.length <= 3, `${reads.length} requests: ${reads.map((l) => `${l.op} ${l.range ?? ''}`).join(', ')}`);
  const bytes = await readFile(npy);
  const frame = Buffer.from(expectedFrame(C.seed, 23, 'uint8', C.shape));
  // .npy: header, then the frame's bytes
  assert.ok(bytes.subarray(bytes.length - frame.length).equals(frame), 'frame 23 equals what the camera wrote');
  assert.match(bytes.subarray(0, 128).toString('latin1'), /'shape': \(1, 96, 128, 3\)/);
});
