/**
 * Issue 6's Done-when over S3: fur's S3-compatible test server (HTTPS, signatures and per-part
 * checksums checked), the real `fur` binary watching a camera, and what arrived read back by
 * independent tools — Debian's awscli downloads, lists and inspects, h5py (HDF5 1.10.8) reads
 * (the 1,800-frame batches and files: every object from the server's store, a sample through awscli):
 *  - 1,800 frames 434×434×3 uint8 TIFF and 500 JPEG, with append, batches and files, --delete-source;
 *  - the append object: a normal HDF5 file whose whole structure h5py finds in part 1 (bytes read, reported);
 *  - append killed at random three times, then finished: every frame once;
 *  - a versioned bucket (made and configured by awscli): no version of fur's records left behind.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sortSequence } from '../../src/source/sequence.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { META_END } from '../../src/pipeline/s3-hdf5-target.js';
import { writeFrames } from '../pipeline/helpers.js';
import { runOk } from '../../harness/run.js';
import { h5dumpCheck, h5pyFrames, python } from './support/h5py.js';
import { assertFiles, assertFrames, JPEG, killedThenFinished, pattern, TIFF, watchWhileCapturing, type Cam } from './ftps-s3-check.js';

const AWS = '/usr/bin/aws';
const KEYS = { accessKeyId: 'FURINTEROPKEY0000001', secretAccessKey: 'fur/interop/secret/key/0123456789abcdef' };
const work = mkdtempSync(join(tmpdir(), 'fur-interop-s3-'));
let s3: S3Server;
let caFile: string;
/** the environment of fur and of awscli: test keys, no profile of the machine's */
let env: NodeJS.ProcessEnv;

before(async () => {
  s3 = await startS3Server({ root: join(work, 'store'), buckets: ['lab'], credentials: [KEYS] });
  caFile = join(work, 'ca.pem');
  writeFileSync(caFile, s3.certificate!.cert);
  const config = join(work, 'aws-config');
  writeFileSync(config, '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n');
  env = {
    AWS_ACCESS_KEY_ID: KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: KEYS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-credentials'), AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '',
    AWS_CA_BUNDLE: caFile, AWS_PROFILE: '', AWS_ENDPOINT_URL: '', AWS_ENDPOINT_URL_S3: '',
  };
  for (const k of ['AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3']) delete env[k];
});
after(async () => {
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

const flags = () => ['--endpoint', s3.endpoint, '--ca-file', caFile];
const fullEnv = () => ({ ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))), ...env });

/** Debian's awscli against the test server; stdout as text. */
async function aws(args: string[]): Promise<string> {
  const r = await runOk(AWS, ['--endpoint-url', s3.endpoint, '--ca-bundle', caFile, '--no-cli-pager', ...args], { env: fullEnv(), timeoutMs: 300_000 });
  return r.stdout.toString('utf8');
}

/**
 * Everything under a prefix, copied straight from the test server's store into a fresh folder,
 * with a sample of the objects also downloaded by awscli and compared byte for byte: h5py reads
 * every object without awscli moving every gigabyte through the S3 protocol a second time.
 */
async function mirrorChecked(bucket: string, prefix: string, sample: number): Promise<string> {
  const dir = mkdtempSync(join(work, 'mirror-'));
  const all = (await keys(bucket, `${prefix}/`));
  for (const k of all) writeFileSync(join(dir, k.slice(prefix.length + 1)), (await s3.object(bucket, k))!);
  const picked = [all[0]!, all[all.length - 1]!, ...Array.from({ length: sample }, () => all[Math.floor(Math.random() * all.length)]!)];
  const via = mkdtempSync(join(work, 'awscli-'));
  for (const k of new Set(picked)) {
    const to = join(via, k.slice(prefix.length + 1));
    await aws(['s3', 'cp', `s3://${bucket}/${k}`, to, '--only-show-errors']);
    assert.ok(readFileSync(to).equals(readFileSync(join(dir, k.slice(prefix.length + 1)))), `awscli and the store agree on ${k}`);
  }
  rmSync(via, { recursive: true, force: true });
  return dir;
}

/** Download with awscli into a fresh local folder; returns that folder. */
async function download(bucket: string, prefix: string, recursive: boolean): Promise<string> {
  const dir = mkdtempSync(join(work, 'download-'));
  const to = recursive ? dir : join(dir, prefix.split('/').pop()!);
  await aws(['s3', 'cp', `s3://${bucket}/${prefix}`, to, ...(recursive ? ['--recursive', '--only-show-errors'] : ['--only-show-errors'])]);
  return dir;
}

async function keys(bucket: string, prefix = ''): Promise<string[]> {
  const out = JSON.parse((await aws(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', prefix])) || '{}') as { Contents?: { Key: string }[] };
  return (out.Contents ?? []).map((c) => c.Key).sort();
}

async function pendingUploads(bucket: string): Promise<unknown[]> {
  const out = JSON.parse((await aws(['s3api', 'list-multipart-uploads', '--bucket', bucket])) || '{}') as { Uploads?: unknown[] };
  return out.Uploads ?? [];
}

/** h5py through a file object that records what it reads: the bytes a remote reader fetches to know the whole structure. */
const STRUCTURE_READ = `
import sys, io, json, h5py
class Recorder(io.RawIOBase):
    def __init__(self, path):
        self.f = open(path, 'rb'); self.end = 0; self.reads = 0
    def readable(self): return True
    def seekable(self): return True
    def seek(self, o, w=0): return self.f.seek(o, w)
    def tell(self): return self.f.tell()
    def readinto(self, b):
        at = self.f.tell(); n = self.f.readinto(b)
        self.end = max(self.end, at + n); self.reads += 1
        return n
r = Recorder(sys.argv[1])
chunks = 0
with h5py.File(r, 'r') as f:
    dict(f.attrs)
    def visit(name, obj):
        global chunks
        dict(obj.attrs)
        if isinstance(obj, h5py.Dataset):
            obj.shape, obj.dtype, obj.maxshape
            if obj.chunks:
                for i in range(obj.id.get_num_chunks()):
                    obj.id.get_chunk_info(i); chunks += 1
    f.visititems(visit)
print(json.dumps({'end': r.end, 'reads': r.reads, 'chunks': chunks}))
`;

async function checkAppendObject(key: string, c: Cam): Promise<void> {
  const dir = await download('lab', key, false);
  const path = join(dir, key.split('/').pop()!);
  assertFrames(await h5pyFrames([path]), c);
  await h5dumpCheck(path, { values: false });
  const structure = JSON.parse(await python(STRUCTURE_READ, [path])) as { end: number; reads: number; chunks: number };
  assert.ok(structure.end <= META_END, `h5py read up to byte ${structure.end} to see the structure, beyond part 1 (${META_END})`);
  const size = readFileSync(path).length;
  const head = JSON.parse(await aws(['s3api', 'head-object', '--bucket', 'lab', '--key', key, '--checksum-mode', 'ENABLED'])) as { ContentLength: number; ETag: string; ChecksumSHA256?: string };
  assert.equal(head.ContentLength, size);
  const parts = Number(/-(\d+)"?$/.exec(head.ETag)?.[1] ?? 1);
  process.stderr.write(`# s3 append ${key}: ${size} bytes in ${parts} parts (SHA-256 per part: ${head.ChecksumSHA256 ?? 'none'}); h5py saw every header and all ${structure.chunks} chunk-index entries reading the first ${structure.end} bytes (${structure.reads} reads), within part 1 (${META_END} bytes)\n`);
  rmSync(dir, { recursive: true, force: true });
}

describe('S3: append, batches and files, read back by awscli and h5py', () => {
  for (const c of [TIFF(1800, 300, 701), JPEG(500, 300, 702)]) {
    const what = c.format === 'jpeg' ? '500 JPEG files' : '1,800 frames 434×434×3 TIFF';

    test(`append: ${what} at ${c.fps} fps, one object, --delete-source`, async () => {
      const key = `append-${c.format}.h5`;
      const { seconds } = await watchWhileCapturing(work, c, `s3://lab/${key}`, 'append', ['--batch', '100', ...flags()], env);
      assert.deepEqual(await keys('lab', key), [key, `${key}.kerchunk.json`], 'the object and its chunk index; no upload records left');
      assert.deepEqual(await pendingUploads('lab'), []);
      await checkAppendObject(key, c);
      process.stderr.write(`# s3 append ${what}: capture + upload ended after ${seconds.toFixed(1)} s\n`);
    });

    test(`batches: ${what} at ${c.fps} fps, --batch 100, --delete-source`, async () => {
      const prefix = `batches-${c.format}`;
      await watchWhileCapturing(work, c, `s3://lab/${prefix}`, 'batches', ['--batch', '100', ...flags()], env);
      const dir = c.format === 'jpeg' ? await download('lab', prefix, true) : await mirrorChecked('lab', prefix, 3);
      const names = sortSequence(readdirSync(dir));
      const h5 = names.filter((n) => n.endsWith('.h5'));
      assert.deepEqual(names.filter((n) => !h5.includes(n)), h5.map((n) => `${n}.kerchunk.json`), 'one sidecar per batch, nothing else');
      assertFrames(await h5pyFrames(h5.map((n) => join(dir, n))), c);
      rmSync(dir, { recursive: true, force: true });
    });

    test(`files: ${what} at ${c.fps} fps, byte for byte, --delete-source`, async () => {
      const prefix = `files-${c.format}`;
      await watchWhileCapturing(work, c, `s3://lab/${prefix}`, 'files', flags(), env);
      const dir = c.format === 'jpeg' ? await download('lab', prefix, true) : await mirrorChecked('lab', prefix, 20);
      assertFiles(sortSequence(readdirSync(dir)), (n) => readFileSync(join(dir, n)), c);
      rmSync(dir, { recursive: true, force: true });
    });
  }
  test('nothing is left pending in the bucket', async () => {
    assert.deepEqual(await pendingUploads('lab'), []);
  });
});

describe('S3 append: killed at random three times, then run to the end', () => {
  test('400 frames: every frame once, in order; the object appears only at the end', async () => {
    const c = TIFF(400, 0, 703);
    const cam = mkdtempSync(join(work, 'camera-'));
    await writeFrames(cam, { ...c, dtype: 'uint8' }, 0, c.frames);
    const args = ['upload', cam, 's3://lab/killed.h5', '--batch', '20', '--delete-source', '--pattern', pattern(c), ...flags()];
    const { kills, killed } = await killedThenFinished(args, 3, [1, 3], env);
    process.stderr.write(`# s3 append killed after ${kills.join(', ')} (${killed} of 3 runs were still going)\n`);
    assert.equal(killed, 3, 'every kill landed inside a run (20 batches; a kill comes at most 3 commits and 100 ms into a run)');
    assert.deepEqual(readdirSync(cam), []);
    assert.deepEqual(await keys('lab', 'killed'), ['killed.h5', 'killed.h5.kerchunk.json']);
    assert.deepEqual(await pendingUploads('lab'), []);
    await checkAppendObject('killed.h5', c);
  });
});

describe('S3: a versioned bucket, made and configured by awscli', () => {
  test('append interrupted once: fur\'s upload records leave no version behind', async () => {
    await aws(['s3api', 'create-bucket', '--bucket', 'versioned']);
    await aws(['s3api', 'put-bucket-versioning', '--bucket', 'versioned', '--versioning-configuration', 'Status=Enabled']);
    const c = TIFF(120, 0, 704);
    const cam = mkdtempSync(join(work, 'camera-'));
    mkdirSync(cam, { recursive: true });
    await writeFrames(cam, { ...c, dtype: 'uint8' }, 0, c.frames);
    const args = ['upload', cam, 's3://versioned/run.h5', '--batch', '10', '--delete-source', '--pattern', pattern(c), ...flags()];
    await killedThenFinished(args, 1, [2, 5], env);
    const versions = JSON.parse(await aws(['s3api', 'list-object-versions', '--bucket', 'versioned'])) as { Versions?: { Key: string }[]; DeleteMarkers?: { Key: string }[] };
    const all = [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])].map((v) => v.Key);
    assert.deepEqual(all.filter((k) => k.includes('.fur')), [], 'no version of the upload records');
    assert.deepEqual(all.filter((k) => k === 'run.h5'), ['run.h5']);
    const dir = await download('versioned', 'run.h5', false);
    assertFrames(await h5pyFrames([join(dir, 'run.h5')]), c);
  });
});
