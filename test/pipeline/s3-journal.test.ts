/**
 * The S3 append's journal (`<key>.fur/`) on stores that lack parts of the S3 API, and the space
 * it takes. The in-process S3 server sits behind a proxy that answers like s3rver (no ListParts,
 * ListMultipartUploads, AbortMultipartUpload, ListObjectVersions) or fauxqs (NoSuchKey for
 * ListParts, a plain listing for the version and upload listings); the interop tier runs the
 * real ones.
 *  - a run killed after its first commit resumes from fur's journal, every frame once;
 *  - an upload that is gone, with all of its bytes still in the journal, is started again from
 *    it: nothing is lost, nothing is called lost; when bytes in parts went with it, the message
 *    never advises deleting `<key>.fur/`;
 *  - leftovers fur cannot clean (uploads it cannot abort or list) are reported in one line;
 *  - the stored parts plus `<key>.fur/` stay within data + metadata region + two chunks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Agent as HttpsAgent } from 'node:https';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { META_END } from '../../src/pipeline/s3-hdf5-target.js';
import { assertCapture, cli, localFrames, readFlags, runKilledAfter, scratch, writeFrames, type Capture } from './helpers.js';
import { openS3Dest, S3_KEYS, useTestAwsEnv, type S3Dest } from './s3-dest.js';
import { FAUXQS_LIKE, S3RVER_LIKE, startLimitedS3, type Answer, type Lacking, type LimitedS3 } from '../support/s3-limited.js';

useTestAwsEnv();

/** 565 KB frames: 25 of them fill more than a part (13 MiB), so a first commit of 25 records one */
const BIG: Capture = { format: 'tiff', dtype: 'uint8', shape: [434, 434, 3], seed: 41, frames: 40 };
const FRAME_BYTES = 434 * 434 * 3;

interface Limited { d: S3Dest; proxy: LimitedS3; flags: string[] }

async function openLimited(t: Parameters<typeof scratch>[0], answers: Partial<Record<Lacking, Answer>>): Promise<Limited> {
  const d = await openS3Dest(t);
  const proxy = await startLimitedS3(d.server, answers);
  t.after(() => proxy.close());
  const flags = d.flags.map((f) => (f === d.server.endpoint ? proxy.endpoint : f));
  return { d, proxy, flags };
}

function client(d: S3Dest): S3Client {
  return new S3Client({ endpoint: d.server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_KEYS,
    requestHandler: { httpsAgent: new HttpsAgent({ ca: d.server.certificate!.cert }) } });
}

interface StateView { uploadId: string | null; parts: { n: number; size: number }[]; end: number; frames: number }

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

const SERVERS: [string, Partial<Record<Lacking, Answer>>][] = [['s3rver', S3RVER_LIKE], ['fauxqs', FAUXQS_LIKE]];

for (const [name, answers] of SERVERS) {
  describe(`append → a store answering like ${name}`, () => {
    test('killed after its first commit (a part recorded): resumed from fur\'s journal, every frame once, nothing left behind', async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const { d, proxy, flags } = await openLimited(t, answers);
      await writeFrames(cam, BIG, 0, BIG.frames);
      const args = ['upload', cam, d.url('append', 'run'), '--batch', '25', '--delete-source', ...readFlags(BIG), ...flags];
      assert.ok((await runKilledAfter(args, 1)).killed, 'the first run was killed inside the run');
      const at = await state(d, 'run.h5');
      assert.ok(at.parts.length >= 1, 'the first commit recorded a part, which the resumed run cannot list');
      const r = await cli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(proxy.answered.some((a) => a.op === 'ListParts'), 'fur asked for the parts and got the store\'s answer');
      assert.match(r.stderr, /does not list the parts of a pending upload \(ListParts: (MethodNotAllowed|NoSuchKey)\); resuming from fur's own record/);
      assert.doesNotMatch(r.stderr, /lost|gone|[Rr]emove .*\.fur\//);
      assertCapture(await d.stored('append', 'run'), BIG);
      assert.deepEqual(await localFrames(cam), []);
      assert.deepEqual(journalKeys(d, 'run.h5'), [], 'the journal is removed once the object is complete');
      assert.deepEqual(d.server.uploads(d.bucket), [], 'the upload was completed');
    });

    test('an earlier run\'s unrecorded upload that fur cannot list is reported in one line, and the run goes on', async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const { d, flags } = await openLimited(t, answers);
      await writeFrames(cam, BIG, 0, 6);
      const s3 = client(d);
      try {
        // a run killed between recording its intent and recording the upload it created
        const intent = { fur: 's3-append-state', version: 1, key: 'orphan.h5', uploadId: null, created: new Date().toISOString(), seq: 0, metaEnd: META_END, metaCursor: 0, meta: '',
          parts: [], held: [], tailStart: META_END, end: META_END, spills: [], tails: {}, ledgers: [], layout: null, dataset: '/data', frames: 0, files: 0, bytes: 0 };
        await s3.send(new PutObjectCommand({ Bucket: d.bucket, Key: 'orphan.h5.fur/state', Body: gzipSync(JSON.stringify(intent)) }));
        const left = await s3.send(new CreateMultipartUploadCommand({ Bucket: d.bucket, Key: 'orphan.h5' }));
        const r = await cli(['upload', cam, d.url('append', 'orphan'), '--batch', '3', ...readFlags(BIG), ...flags]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stderr.split('\n').filter((l) => /pending upload/.test(l) && /ListMultipartUploads/.test(l));
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /orphan\.h5: an upload an earlier run of fur started .* may still be pending/);
        assertCapture(await d.stored('append', 'orphan'), { ...BIG, frames: 6 });
        assert.deepEqual(d.server.uploads(d.bucket).map((u) => u.uploadId), [left.UploadId], 'the unrecorded upload is still there, as reported');
      } finally {
        s3.destroy();
      }
    });
  });
}

describe('append → s3: the pending upload is gone', () => {
  test('every committed byte still in the journal: a new upload is started from it, nothing lost or called lost', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, BIG, 0, 12);
    const args = ['upload', cam, d.url('append', 'gone'), '--batch', '4', '--delete-source', ...readFlags(BIG), ...d.flags];
    assert.ok((await runKilledAfter(args, 2)).killed);
    const before = await state(d, 'gone.h5');
    assert.deepEqual(before.parts, [], 'no part was sent: the journal holds every committed byte');
    const s3 = client(d);
    try {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: d.bucket, Key: 'gone.h5', UploadId: before.uploadId! }));
    } finally {
      s3.destroy();
    }
    const r = await cli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`the pending upload ${before.uploadId} is gone; every committed frame is in fur's own record .*: sending them again in a new upload`));
    assert.doesNotMatch(r.stderr, /lost|[Rr]emove/);
    assertCapture(await d.stored('append', 'gone'), { ...BIG, frames: 12 });
    assert.deepEqual(await localFrames(cam), []);
    assert.deepEqual(journalKeys(d, 'gone.h5'), []);
  });

  test('parts went with it: the run stops, and the message keeps <key>.fur/, which holds the frames not in a part', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    await writeFrames(cam, BIG, 0, BIG.frames);
    const args = ['upload', cam, d.url('append', 'gone'), '--batch', '25', '--delete-source', ...readFlags(BIG), ...d.flags];
    assert.ok((await runKilledAfter(args, 1)).killed);
    const before = await state(d, 'gone.h5');
    assert.ok(before.parts.length >= 1);
    const s3 = client(d);
    try {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: d.bucket, Key: 'gone.h5', UploadId: before.uploadId! }));
    } finally {
      s3.destroy();
    }
    const journal = journalKeys(d, 'gone.h5');
    const r = await cli(args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.lastLine, /the pending upload .* is gone .*; keep gone\.h5\.fur\/ .*choose a new object name/);
    assert.doesNotMatch(r.stderr, /[Rr]emove gone\.h5\.fur|[Dd]elete gone\.h5\.fur/);
    assert.deepEqual(journalKeys(d, 'gone.h5'), journal, 'the journal is untouched');
  });
});

describe('append → a store answering like s3rver: leftovers it cannot abort', () => {
  test('a multipart upload an earlier run left (its marker in .fur-pending/) that cannot be aborted is reported in one line', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const { d, flags } = await openLimited(t, S3RVER_LIKE);
    const TIFF: Capture = { format: 'tiff', dtype: 'uint8', shape: [16, 20, 3], seed: 43, frames: 4 };
    await writeFrames(cam, TIFF, 0, TIFF.frames);
    const s3 = client(d);
    try {
      const left = await s3.send(new CreateMultipartUploadCommand({ Bucket: d.bucket, Key: 'files/big.tif' }));
      await s3.send(new PutObjectCommand({ Bucket: d.bucket, Key: `files/.fur-pending/${encodeURIComponent(left.UploadId!)}`,
        Body: JSON.stringify({ key: 'files/big.tif', uploadId: left.UploadId, started: new Date().toISOString() }) }));
      const r = await cli(['upload', cam, d.url('files', 'files'), '--method', 'files', ...readFlags(TIFF), ...flags]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => /could not be aborted/.test(l));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /1 multipart upload an earlier run of fur left unfinished could not be aborted \(AbortMultipartUpload: MethodNotAllowed\)/);
      assertCapture(await d.stored('files', 'files'), TIFF);
    } finally {
      s3.destroy();
    }
  });
});

describe('append → s3: space', () => {
  // 7 frames a batch (3.96 MB, below a part) and the per-frame datasets' 1,024-row chunks in the
  // first data part, which therefore waits: the case where spilled bytes piled up in <key>.fur/
  const C: Capture = { ...BIG, seed: 47, frames: 98 };
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
