/**
 * fur's three methods to an S3-compatible server (in-process, HTTPS, checked signatures and
 * checksums): cameras, --delete-source, the append object's layout (all metadata in part 1),
 * resume after a failing part and after kill -9, versioned buckets, and the one-line refusals.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { H5File } from '../../src/hdf5/index.js';
import type { RandomAccess } from '../../src/hdf5/sink.js';
import { runCamera } from '../../src/source/camera.js';
import { META_END } from '../../src/pipeline/s3-hdf5-target.js';
import { readFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { gzipSync } from 'node:zlib';
import { CreateMultipartUploadCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  assertCapture, cli, localFrames, METHODS, noRetry, readFlags, scratch, runKilledAfter, watchFlags, writeFrames, type Capture, type Method,
} from './helpers.js';
import { openS3Dest, S3_KEYS, useTestAwsEnv, type S3Dest } from './s3-dest.js';

useTestAwsEnv();

const CAPTURES: Array<Capture & { label: string }> = [
  { label: 'tiff uint8 32x48x3', format: 'tiff', dtype: 'uint8', shape: [32, 48, 3], seed: 3, frames: 40 },
  { label: 'jpeg → bytes (vlen)', format: 'jpeg', dtype: 'uint8', shape: [40, 50], seed: 7, frames: 30 },
];

/** 565 KB frames: a few dozen make several 5-8 MiB parts */
const BIG: Capture = { format: 'tiff', dtype: 'uint8', shape: [434, 434, 3], seed: 11, frames: 60 };

/** Nothing of fur's bookkeeping is left in the bucket, and no upload is pending. */
function assertClean(d: S3Dest): void {
  const extra = d.server.keys(d.bucket).filter((k) => k.includes('.fur/') || k.includes('.fur-pending') || k.endsWith('.fur-partial'));
  assert.deepEqual(extra, [], 'no upload records, markers or temporary objects left');
  assert.deepEqual(d.server.uploads(d.bucket), [], 'no multipart upload left pending');
}

for (const method of METHODS) {
  describe(`${method} → s3`, () => {
    for (const c of CAPTURES) {
      test(`watch a camera writing ${c.frames} frames, ${c.label}, --delete-source`, async (t) => {
        const cam = await scratch(t, 'fur-camera-');
        const d = await openS3Dest(t);
        const camera = runCamera({ dir: cam, format: c.format, dtype: c.format === 'jpeg' ? undefined : c.dtype as never, shape: c.shape, seed: c.seed,
          frames: c.frames, fps: 400, write: 'rename', stopFile: 'capture.done' });
        const r = await cli(['watch', cam, d.url(method, 'run1'), '--method', method, '--batch', '8', '--batch-seconds', '60',
          '--delete-source', ...readFlags(c), ...watchFlags(), ...d.flags]);
        await camera;
        assert.equal(r.code, 0, r.stderr);
        assertCapture(await d.stored(method, 'run1'), c);
        assert.deepEqual(await localFrames(cam), [], 'every committed source deleted');
        assertClean(d);
        if (method !== 'files') {
          const sidecars = d.server.keys(d.bucket).filter((k) => k.endsWith('.kerchunk.json'));
          assert.ok(sidecars.length >= 1, 'chunk index beside the HDF5 objects');
        }
      });
    }
  });
}

/** Reads of fur's own HDF5 reader, recorded: what a remote reader has to fetch to see the structure. */
class Recording implements RandomAccess {
  maxEnd = 0;
  constructor(private bytes: Uint8Array) {}
  async read(offset: number, length: number) { this.maxEnd = Math.max(this.maxEnd, offset + length); return this.bytes.slice(offset, offset + length); }
  async size() { return this.bytes.length; }
  async write() { throw new Error('read only'); }
  async flush() {}
  async close() {}
}

describe('append → s3: one object, metadata in part 1', () => {
  test('60 frames of 434x434x3: data streamed as parts while capturing, the whole structure in the first part', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, BIG, 0, BIG.frames);
    const r = await cli(['upload', cam, d.url('append', 'big'), '--batch', '10', '--delete-source', ...readFlags(BIG), ...d.flags]);
    assert.equal(r.code, 0, r.stderr);
    assertCapture(await d.stored('append', 'big'), BIG);
    assertClean(d);
    const parts = d.server.log.filter((l) => l.op === 'UploadPart' && l.key === 'big.h5');
    assert.ok(parts.length >= 4, `data went as ${parts.length} parts`);
    // parts were sent while later batches were still being read: the first part went before the last commit
    const ops = d.server.log.map((l) => l.op);
    assert.ok(ops.indexOf('UploadPart') < ops.lastIndexOf('PutObject'), 'parts stream during the capture');
    assert.equal(parts.find((p) => p.partNumber === 1) === parts[parts.length - 1], true, 'part 1 (the metadata) is the last one sent');

    const bytes = new Uint8Array(await readFile(await d.download('big.h5')));
    const rec = new Recording(bytes);
    const file = await H5File.open(rec, { readOnly: true });
    for (const p of file.paths()) {
      if (file.isGroup(p)) continue;
      await file.chunkRefs(p);
      for (const a of file.attributes(p)) await file.readAttribute(a);
    }
    await file.close();
    assert.ok(rec.maxEnd <= META_END, `reading the structure touched byte ${rec.maxEnd}, beyond part 1 (${META_END})`);
    t.diagnostic(`object ${bytes.length} bytes in ${parts.length} parts; the whole structure (every header, chunk index, attribute) lies in the first ${rec.maxEnd} bytes`);
  });

  test('while the upload is open, the object is invisible and a progress record counts the frames', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, BIG, 0, 30);
    // no data part can be sent: the first commits are durable (their bytes are in records), the
    // first one that must send a part fails for good
    d.server.fault((q) => (q.op === 'UploadPart' && q.key === 'late.h5' && q.partNumber !== 1 ? 'error' : undefined));
    const r = await cli(['upload', cam, d.url('append', 'late'), '--batch', '10', '--delete-source', ...noRetry(), ...readFlags(BIG), ...d.flags]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.lastLine, /^fur: .*part \d+.*InternalError/);
    assert.equal(d.server.keys(d.bucket).includes('late.h5'), false, 'nothing under the final name');
    const progress = JSON.parse((await d.server.object(d.bucket, 'late.h5.fur/progress.json'))!.toString()) as { frames: number };
    assert.ok(progress.frames > 0 && progress.frames < 30, `progress says ${progress.frames} frames`);
    assert.equal((await localFrames(cam)).length, 30 - progress.frames, 'exactly the committed sources were deleted');

    d.server.fault(undefined);
    const again = await cli(['upload', cam, d.url('append', 'late'), '--batch', '10', '--delete-source', ...readFlags(BIG), ...d.flags]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`resuming: ${progress.frames} frames already there`));
    assertCapture(await d.stored('append', 'late'), { ...BIG, frames: 30 });
    assert.deepEqual(await localFrames(cam), []);
    assertClean(d);
  });

  test('a part failing mid-way: fur reconnects and continues the same upload, exact result', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, BIG, 0, 40);
    let failures = 0;
    // more failures than the SDK retries: the commit fails, the run reconnects and resumes from its record
    d.server.fault((q) => (q.op === 'UploadPart' && q.key === 'mid.h5' && failures++ < 4 ? 'drop' : undefined));
    const r = await cli(['upload', cam, d.url('append', 'mid'), '--batch', '10', '--delete-source', ...readFlags(BIG), ...d.flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(failures >= 4);
    assert.match(r.stderr, /reconnected after .*resuming after the last commit/);
    assertCapture(await d.stored('append', 'mid'), { ...BIG, frames: 40 });
    assert.deepEqual(await localFrames(cam), []);
    assertClean(d);
    assert.equal(d.server.log.filter((l) => l.op === 'CreateMultipartUpload').length, 1, 'one upload, continued');
  });
});

describe('append → s3: killed three times, then run to the end', () => {
  // batches over S3 is the batches target over a destination like any other; the interop tier kills append again with 900 frames
  for (const method of ['append'] as Method[]) {
    test(`${method}: every frame once, in order, sources deleted only once committed`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const d = await openS3Dest(t);
      await writeFrames(cam, BIG, 0, BIG.frames);
      const args = ['upload', cam, d.url(method, 'killed'), '--method', method, '--batch', '5', '--delete-source', ...readFlags(BIG), ...d.flags];
      // kills at commit 1-4 of each run, chosen at random (logged, to reproduce)
      const at = [1, 2, 3].map(() => 1 + Math.floor(Math.random() * 4));
      t.diagnostic(`killed after commits ${at.join(', ')}`);
      let kills = 0;
      for (const k of at) {
        const r = await runKilledAfter(args, k);
        if (r.killed) kills++;
        if (method === 'append') {
          assert.ok(r.killed, `run ended before its kill: ${r.stderr}`);
          assert.equal(d.server.keys(d.bucket).includes(d.key(method, 'killed')), false, 'the object is not visible while unfinished');
        }
      }
      // batches commit several files at once, so a later run may find little left
      assert.ok(kills >= 2, `only ${kills} runs were killed`);
      const last = await cli(args);
      assert.equal(last.code, 0, last.stderr);
      assertCapture(await d.stored(method, 'killed', {}, true), BIG);
      assert.deepEqual(await localFrames(cam), []);
      assertClean(d);
    });
  }
});

describe('append → s3: an upload fur started but never recorded', () => {
  test('is found by the recorded intent and aborted; an upload of another key is left alone', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, BIG, 0, 12);
    // what a run killed between recording its intent and recording the upload leaves behind
    const client = new S3Client({ endpoint: d.server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_KEYS,
      requestHandler: { httpsAgent: new HttpsAgent({ ca: d.server.certificate!.cert }) } });
    try {
      const intent = { fur: 's3-append-state', version: 1, key: 'orphan.h5', uploadId: null, created: new Date().toISOString(), seq: 0, metaEnd: META_END, metaCursor: 0, meta: '',
        parts: [], held: [], tailStart: META_END, end: META_END, spills: [], tails: {}, ledgers: [], layout: null, dataset: '/data', frames: 0, files: 0, bytes: 0 };
      await client.send(new PutObjectCommand({ Bucket: d.bucket, Key: 'orphan.h5.fur/state', Body: gzipSync(JSON.stringify(intent)) }));
      const lost = await client.send(new CreateMultipartUploadCommand({ Bucket: d.bucket, Key: 'orphan.h5' }));
      const other = await client.send(new CreateMultipartUploadCommand({ Bucket: d.bucket, Key: 'someone-else.bin' }));
      const r = await cli(['upload', cam, d.url('append', 'orphan'), '--batch', '6', '--delete-source', ...readFlags(BIG), ...d.flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`aborted upload ${lost.UploadId}, which an earlier run of fur started but never recorded`));
      assert.deepEqual(d.server.uploads(d.bucket).map((u) => u.uploadId), [other.UploadId]);
      assertCapture(await d.stored('append', 'orphan'), { ...BIG, frames: 12 });
    } finally {
      client.destroy();
    }
  });
});

describe('versioned bucket', () => {
  test('append, interrupted once: the finished object has one version and fur\'s records leave no versions behind', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t, {}, 'versioned');
    d.server.setVersioning('versioned', true);
    await writeFrames(cam, BIG, 0, 25);
    const args = ['upload', cam, d.url('append', 'v'), '--batch', '5', '--delete-source', ...readFlags(BIG), ...d.flags];
    assert.ok((await runKilledAfter(args, 2)).killed);
    const r = await cli(args);
    assert.equal(r.code, 0, r.stderr);
    assertCapture(await d.stored('append', 'v'), { ...BIG, frames: 25 });
    const versions = d.server.versions('versioned');
    assert.deepEqual(versions.filter((v) => v.key.includes('.fur/')), [], 'every version of the upload records deleted');
    assert.equal(versions.filter((v) => v.key === 'v.h5').length, 1);
    assertClean(d);
  });
});

describe('refusals: one line, nothing visible, no source deleted', () => {
  const TIFF: Capture = { format: 'tiff', dtype: 'uint8', shape: [16, 20, 3], seed: 31, frames: 6 };

  async function attempt(t: Parameters<typeof scratch>[0], method: Method, setup: (d: S3Dest) => string[] | void, env: Record<string, string> = {}) {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, TIFF, 0, TIFF.frames);
    const extra = setup(d) ?? [];
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const r = await cli(['upload', cam, d.url(method, 'r'), '--method', method, '--delete-source', ...noRetry(), ...readFlags(TIFF), ...d.flags, ...extra]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.lastLine, /^fur: \S/);
      assert.deepEqual(d.server.keys(d.bucket).filter((k) => !k.includes('.fur/')), [], 'nothing visible in the bucket');
      assert.equal((await localFrames(cam)).length, TIFF.frames, 'no source deleted');
      return r.lastLine;
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  }

  for (const method of METHODS) {
    test(`${method}: wrong secret key`, async (t) => {
      const line = await attempt(t, method, () => {}, { AWS_SECRET_ACCESS_KEY: 'wrong' });
      assert.match(line, /credentials were refused \(SignatureDoesNotMatch\)/);
    });
    test(`${method}: missing bucket`, async (t) => {
      const line = await attempt(t, method, (d) => { d.url = (m, n) => `s3://absent-bucket/${m === 'append' ? `${n}.h5` : n}`; });
      assert.match(line, /bucket 'absent-bucket' does not exist/);
    });
    test(`${method}: access denied for writing`, async (t) => {
      const line = await attempt(t, method, (d) => { d.server.deny({ action: 'PutObject' }); });
      assert.match(line, /access denied/);
    });
    test(`${method}: untrusted certificate`, async (t) => {
      const line = await attempt(t, method, (d) => { d.flags = d.flags.filter((f, i, a) => f !== '--ca-file' && a[i - 1] !== '--ca-file'); });
      assert.match(line, /certificate is self-signed.*--ca-file/);
    });
  }

  test('append to a finished object: what it holds is skipped, new frames are refused and kept', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, TIFF, 0, 4);
    const args = ['upload', cam, d.url('append', 'done'), ...readFlags(TIFF), ...d.flags];
    assert.equal((await cli(args)).code, 0);
    const same = await cli(args);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.lastLine, /^fur: 0 frames/);
    await writeFrames(cam, TIFF, 4, 6);
    const more = await cli([...args, '--delete-source', ...noRetry()]);
    assert.equal(more.code, 1, more.stderr);
    assert.match(more.lastLine, /is complete: an S3 object cannot grow/);
    assert.equal((await localFrames(cam)).length, 2, 'the new frames are kept; the stored ones were deleted');
    assertCapture(await d.stored('append', 'done'), { ...TIFF, frames: 4 });
  });

  test('credentials come from the environment; the keys never appear in output', async (t) => {
    const line = await attempt(t, 'batches', () => {}, { AWS_ACCESS_KEY_ID: 'AKIAUNKNOWNKEY000000' });
    assert.match(line, /InvalidAccessKeyId/);
    assert.doesNotMatch(line, new RegExp(S3_KEYS.secretAccessKey.replace(/[/]/g, '\\/')));
  });
});
