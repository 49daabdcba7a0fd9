/**
 * The space the S3 append's journal (`<key>.fur/`) takes: the stored parts plus the journal stay
 * within data + metadata region + two chunks after kills and at the end (spills kept whole
 * piled up dead bytes — pipeline/s3-spills.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { META_END } from '../../src/transport/s3-append.js';
import { assertCapture, cli, readFlags, runKilledAfter, scratch, writeFrames, type Capture } from './helpers.js';
import { openS3Dest, useTestAwsEnv, type S3Dest } from './s3-dest.js';

useTestAwsEnv();

const FRAME_BYTES = 434 * 434 * 3;

interface StateView { parts: { n: number; size: number }[]; end: number; frames: number }

async function state(d: S3Dest, key: string): Promise<StateView> {
  const raw = await d.server.object(d.bucket, `${key}.fur/state`);
  assert.ok(raw, `${key}.fur/state exists`);
  return JSON.parse(gunzipSync(raw).toString('utf8')) as StateView;
}

function journalKeys(d: S3Dest, key: string): string[] {
  return d.server.keys(d.bucket).filter((k) => k.startsWith(`${key}.fur/`));
}

async function journalBytes(d: S3Dest, key: string): Promise<number> {
  let n = 0;
  for (const k of journalKeys(d, key)) n += (await d.server.object(d.bucket, k))!.length;
  return n;
}

describe('append → s3: space', () => {
  // 7 frames a batch (3.96 MB, below a part) and the per-frame datasets' 1,024-row chunks in the
  // first data part, which therefore waits: the case where spilled bytes piled up in <key>.fur/
  const C: Capture = { format: 'tiff', dtype: 'uint8', shape: [434, 434, 3], seed: 47, frames: 98 };
  const CHUNK = 7 * FRAME_BYTES;

  test('parts + <key>.fur/ within data + metadata region + two chunks after every kill, and the object at the end', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, C, 0, C.frames);
    const args = ['upload', cam, d.url('append', 'space'), '--batch', '7', '--delete-source', ...readFlags(C), ...d.flags];
    for (const k of [5, 7]) {
      assert.ok((await runKilledAfter(args, k)).killed);
      const s = await state(d, 'space.h5');
      const parts = s.parts.reduce((n, p) => n + p.size, 0);
      const journal = await journalBytes(d, 'space.h5');
      const data = s.end - META_END;
      const bound = data + META_END + 2 * CHUNK;
      t.diagnostic(`after a kill at ${s.frames} frames: parts ${parts} + ${'space.h5.fur/'} ${journal} = ${parts + journal} bytes for ${data} bytes of data (${((parts + journal) / data).toFixed(3)}×; bound ${bound})`);
      assert.ok(parts + journal <= bound, `parts ${parts} + journal ${journal} = ${parts + journal} > data ${data} + metadata region ${META_END} + two chunks ${2 * CHUNK}`);
    }
    const r = await cli(args);
    assert.equal(r.code, 0, r.stderr);
    const object = (await d.server.object(d.bucket, 'space.h5'))!.length;
    const frames = C.frames * FRAME_BYTES;
    t.diagnostic(`finished: object ${object} bytes for ${frames} bytes of frames (${(object / frames).toFixed(3)}×), ${journalKeys(d, 'space.h5').length} journal objects left`);
    assert.deepEqual(journalKeys(d, 'space.h5'), []);
    assert.ok(object <= frames + META_END + 2 * CHUNK, `object ${object} > frames ${frames} + metadata region + two chunks`);
    assertCapture(await d.stored('append', 'space'), C);
  });
});
