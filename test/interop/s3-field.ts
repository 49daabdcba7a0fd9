/**
 * The pipeline's cases against an S3 fur's authors did not write (Ceph RGW, s3rver): the real
 * `fur` binary uploads with every method and --delete-source, `fur verify` checks with and
 * without the sources, an `append` killed after its first commit resumes, and h5py (HDF5 1.10.8)
 * reads back what the server holds — downloaded with the AWS SDK, independently of fur.
 * Data stays small (CI pays for every megabyte twice on a 2-core machine).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { AbortMultipartUploadCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { sortSequence } from '../../src/source/sequence.js';
import { FUR_BIN, runKilledAfter, writeFrames } from '../pipeline/helpers.js';
import { run } from '../support/run.js';
import { h5pyFrames } from './support/h5py.js';
import { assertFiles, assertFrames, pattern, TIFF, type Cam } from './ftps-s3-check.js';
import { twoRunsOneDestination } from './support/two-runs.js';

export interface FieldS3 {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  bucket: string;
  /** scratch folder, removed by the caller */
  work: string;
}

/** What the server does where S3 look-alikes differ. */
export interface FieldTraits {
  /** what it does with `If-None-Match: *` on PutObject of an existing key */
  conditionalCreate: 'refused' | 'replaces';
  /** it answers ListParts (else fur resumes from its own record, and says so) */
  listsParts: boolean;
  /** it aborts multipart uploads (a case aborts fur's behind its back) */
  aborts: boolean;
}

// the SDK's notice about its future Node versions is noise in test output
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** small frames for the methods' cases: 48×64×3 uint8 TIFF */
const SMALL = (frames: number, seed: number): Cam => ({ format: 'tiff', dtype: 'uint8', shape: [48, 64, 3], frames, fps: 0, seed });

/** `name` as the README's table names the server; `server` is called once it has started. */
export function fieldCases(name: string, traits: FieldTraits, server: () => FieldS3): void {
  let s3: S3Client | undefined;
  after(() => s3?.destroy());
  const f = () => server();
  const client = () => (s3 ??= new S3Client({ endpoint: f().endpoint, region: 'us-east-1', forcePathStyle: true, credentials: f().credentials }));
  /** fur's environment: the server's keys, nothing of the machine's AWS configuration */
  const env = (): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))),
    AWS_ACCESS_KEY_ID: f().credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: f().credentials.secretAccessKey, AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(f().work, 'no-aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(f().work, 'no-aws-credentials'), AWS_EC2_METADATA_DISABLED: 'true',
  });
  const fur = async (args: string[], code = 0): Promise<string> => {
    const r = await run(process.execPath, [FUR_BIN, ...args, '--endpoint', f().endpoint], { env: env(), timeoutMs: 300_000 });
    assert.equal(r.code, code, `fur ${args[0]} exited ${r.code ?? r.signal}:\n${r.stderr}`);
    return r.stderr;
  };
  const url = (key: string) => `s3://${f().bucket}/${key}`;
  const keys = async (prefix: string): Promise<string[]> => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await client().send(new ListObjectsV2Command({ Bucket: f().bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(r.Contents ?? []).map((c) => c.Key!));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  };
  const object = async (key: string): Promise<Uint8Array> => {
    const r = await client().send(new GetObjectCommand({ Bucket: f().bucket, Key: key }));
    return r.Body!.transformToByteArray();
  };
  /** objects under `prefix/` (or the one object `prefix`) into a fresh local folder */
  const download = async (prefix: string, one = false): Promise<string> => {
    const dir = mkdtempSync(join(f().work, 'download-'));
    for (const k of one ? [prefix] : await keys(`${prefix}/`)) writeFileSync(join(dir, k.slice(one ? k.lastIndexOf('/') + 1 : prefix.length + 1)), await object(k));
    return dir;
  };
  const camera = async (c: Cam): Promise<string> => {
    const dir = mkdtempSync(join(f().work, 'camera-'));
    await writeFrames(dir, c, 0, c.frames);
    return dir;
  };
  /** `fur verify` with the sources (written again: the upload deleted them), one source changed, and without sources */
  const verifyAll = async (c: Cam, dest: string, method: string): Promise<void> => {
    const src = await camera(c);
    const line = await fur(['verify', src, dest, '--method', method, '--pattern', pattern(c)]);
    assert.match(line, new RegExp(`fur verify: ${c.frames} equal, 0 different, 0 files missing`));
    const changed = mkdtempSync(join(f().work, 'changed-'));
    await writeFrames(changed, { ...c, seed: c.seed + 1 }, 3, 4);
    writeFileSync(join(src, readdirSync(changed)[0]!), readFileSync(join(changed, readdirSync(changed)[0]!)));
    const caught = await fur(['verify', src, dest, '--method', method, '--pattern', pattern(c)], 3);
    assert.match(caught, new RegExp(`fur verify: ${c.frames - 1} equal, 1 different`));
    if (method !== 'files') assert.match(await fur(['verify', dest, '--method', method]), new RegExp(`fur verify: ${c.frames} equal, 0 different`));
  };

  describe(`${name}: every method, --delete-source, verify`, () => {
    test('append: one multipart object, read back by h5py; verify with and without the sources', async () => {
      // 565 KB frames: a data part and the metadata part
      const c = TIFF(12, 0, 801);
      const cam = await camera(c);
      await fur(['upload', cam, url('append.h5'), '--batch', '4', '--delete-source', '--pattern', pattern(c)]);
      assert.deepEqual(readdirSync(cam), [], 'every source deleted once committed');
      assert.deepEqual(await keys('append.h5'), ['append.h5', 'append.h5.kerchunk.json'], 'the object and its chunk index; no upload record left');
      const dir = await download('append.h5', true);
      assertFrames(await h5pyFrames([join(dir, 'append.h5')]), c);
      await verifyAll(c, url('append.h5'), 'append');
    });

    test('batches: one HDF5 file per batch with its chunk index, read back by h5py; verify with and without the sources', async () => {
      const c = SMALL(45, 802);
      const cam = await camera(c);
      await fur(['upload', cam, url('batches'), '--method', 'batches', '--batch', '10', '--delete-source', '--pattern', pattern(c)]);
      assert.deepEqual(readdirSync(cam), []);
      const dir = await download('batches');
      const names = sortSequence(readdirSync(dir));
      const h5 = names.filter((n) => n.endsWith('.h5'));
      assert.equal(h5.length, 5);
      assert.deepEqual(names.filter((n) => !h5.includes(n)), h5.map((n) => `${n}.kerchunk.json`), 'one sidecar per batch, nothing else');
      assertFrames(await h5pyFrames(h5.map((n) => join(dir, n))), c);
      await verifyAll(c, url('batches'), 'batches');
    });

    test('files: the camera files byte for byte; verify with the sources', async () => {
      const c = SMALL(20, 803);
      const cam = await camera(c);
      await fur(['upload', cam, url('files'), '--method', 'files', '--delete-source', '--pattern', pattern(c)]);
      assert.deepEqual(readdirSync(cam), []);
      const dir = await download('files');
      assertFiles(sortSequence(readdirSync(dir)), (n) => readFileSync(join(dir, n)), c);
      await verifyAll(c, url('files'), 'files');
    });
  });

  describe(`${name}: append killed after its first commit, then resumed`, () => {
    test('every frame exactly once, equal to the sources; nothing of fur\'s record left', async () => {
      // 25 frames of 565 KB pass 13 MiB: the first commit records a part, which a resumed run must trust or list
      const c = TIFF(30, 0, 804);
      const cam = await camera(c);
      const args = ['upload', cam, url('killed.h5'), '--batch', '25', '--delete-source', '--pattern', pattern(c), '--endpoint', f().endpoint];
      const killed = await runKilledAfter(args, 1, { env: env() });
      assert.ok(killed.killed, `the first run ended before its kill:\n${killed.stderr}`);
      const state = JSON.parse(gunzipSync(await object('killed.h5.fur/state')).toString('utf8')) as { parts: unknown[]; frames: number };
      assert.equal(state.frames, 25, 'the first commit is recorded');
      assert.ok(state.parts.length >= 1, 'with a part');
      assert.ok(!(await keys('killed.h5')).includes('killed.h5'), 'the object is not visible before the end');
      const resumed = await fur(args.slice(0, -2));
      if (!traits.listsParts) assert.match(resumed, /does not list the parts of a pending upload \(ListParts: \w+\); resuming from fur's own record/);
      else assert.doesNotMatch(resumed, /ListParts/);
      assert.match(resumed, /resuming: 25 frames already there/);
      assert.deepEqual(readdirSync(cam), []);
      assert.deepEqual(await keys('killed.h5'), ['killed.h5', 'killed.h5.kerchunk.json']);
      const dir = await download('killed.h5', true);
      assertFrames(await h5pyFrames([join(dir, 'killed.h5')]), c);
    });
  });

  describe(`${name}: the pending upload aborted behind fur's back`, () => {
    test('every committed byte in fur\'s record: started again in a new upload, every frame once', { skip: traits.aborts ? false : 'the server cannot abort an upload' }, async () => {
      const c = SMALL(12, 805);
      const cam = await camera(c);
      const args = ['upload', cam, url('aborted.h5'), '--batch', '4', '--delete-source', '--pattern', pattern(c), '--endpoint', f().endpoint];
      assert.ok((await runKilledAfter(args, 2, { env: env() })).killed);
      const state = JSON.parse(gunzipSync(await object('aborted.h5.fur/state')).toString('utf8')) as { uploadId: string; parts: unknown[] };
      assert.deepEqual(state.parts, [], 'no part sent: small frames');
      await client().send(new AbortMultipartUploadCommand({ Bucket: f().bucket, Key: 'aborted.h5', UploadId: state.uploadId }));
      const resumed = await fur(args.slice(0, -2));
      assert.ok(resumed.includes(`the pending upload ${state.uploadId} is gone; every committed frame is in fur's own record`), resumed);
      assert.deepEqual(readdirSync(cam), []);
      assert.deepEqual(await keys('aborted.h5'), ['aborted.h5', 'aborted.h5.kerchunk.json']);
      const dir = await download('aborted.h5', true);
      assertFrames(await h5pyFrames([join(dir, 'aborted.h5')]), c);
    });
  });

  describe(`${name}: two fur runs started together on one destination`, () => {
    for (const method of ['append', 'batches'] as const) {
      test(`${method}: exactly one writes (${traits.conditionalCreate === 'refused' ? 'a conditional create' : 'claims: the server ignores If-None-Match'}); h5py reads its frames back equal; the other kept every file`, async () => {
        const key = method === 'append' ? 'two.h5' : 'two-batches';
        await twoRunsOneDestination({
          method, url: url(key), flags: ['--endpoint', f().endpoint], env: env(), work: f().work, cams: [SMALL(40, 806), SMALL(40, 807)],
          stored: async () => (method === 'append' ? join(await download(key, true), key) : download(key)),
          leftovers: async () => (await keys('')).filter((k) => k.includes('fur-lease') || k.includes('fur-probe')),
        });
      });
    }
  });

  describe(`${name}: PutObject with If-None-Match: * (a conditional create)`, () => {
    test('the first create succeeds; the second one is refused or replaces the object, as this server does', async () => {
      const key = 'probe/lease';
      await client().send(new PutObjectCommand({ Bucket: f().bucket, Key: key, Body: 'first', IfNoneMatch: '*' }));
      let refused: string | undefined;
      try {
        await client().send(new PutObjectCommand({ Bucket: f().bucket, Key: key, Body: 'second', IfNoneMatch: '*' }));
      } catch (e) {
        refused = `${(e as { name?: string }).name} ${(e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode}`;
      }
      const now = Buffer.from(await object(key)).toString('utf8');
      if (traits.conditionalCreate === 'refused') {
        assert.equal(refused, 'PreconditionFailed 412');
        assert.equal(now, 'first');
      } else {
        assert.equal(refused, undefined, 'no refusal');
        assert.equal(now, 'second', 'the object was replaced: this server ignores If-None-Match on PUT');
      }
    });
  });
}
