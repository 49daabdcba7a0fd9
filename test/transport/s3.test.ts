// S3 destination against fur's in-process S3-compatible server over HTTPS: objects and prefixes,
// held temporary files published by rename, multipart with per-part SHA-256, the one-line errors
// (credentials, bucket, access, certificate), a part failing mid-way, abandoned uploads, versioning.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { makeCertificate } from '../../harness/certificate.js';
import { openDestination } from '../../src/transport/open.js';
import { S3Destination, type S3Options } from '../../src/transport/s3.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { markerKey } from '../../src/transport/s3-upload.js';
import { parseDestinationUrl } from '../../src/transport/url.js';
import { pattern, rejectsWith, scratch } from './helpers.js';

interface Fixture { server: S3Server; caFile: string; cleanup(): Promise<void> }

async function fixture(): Promise<Fixture> {
  const { dir, cleanup } = await scratch('fur-s3-');
  const server = await startS3Server({ root: join(dir, 'store'), buckets: ['lab'] });
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, server.certificate!.cert);
  return { server, caFile, cleanup: async () => { await server.close(); await cleanup(); } };
}

function connect(f: Fixture, url = 's3://lab/runs', extra: S3Options = {}): Promise<S3Destination> {
  const t = parseDestinationUrl(url) as { bucket: string; prefix: string; params: Record<string, string> };
  return S3Destination.connect(t, { endpoint: f.server.endpoint, caFile: f.caFile, credentials: f.server.credentials, ...extra });
}

async function put(d: S3Destination, path: string, bytes: Uint8Array): Promise<void> {
  const w = await d.openWrite(path, { truncate: true });
  await w.write(0, bytes);
  await w.close();
}

describe('s3 destination', () => {
  let f: Fixture;
  before(async () => { f = await fixture(); });
  after(async () => { await f.cleanup(); });

  it('opens from an s3:// URL with credentials from the environment; objects, not positional files', async () => {
    process.env.AWS_ACCESS_KEY_ID = f.server.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = f.server.credentials.secretAccessKey;
    try {
      const d = await openDestination('s3://lab/runs', { endpoint: f.server.endpoint, caFile: f.caFile });
      assert.equal(d.url, 's3://lab/runs');
      assert.equal(d.capabilities.positionalWrite, false);
      assert.equal(d.capabilities.atomicReplace, true);
      await d.close();
    } finally {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('stores files written out of order as one object; lists, stats and reads ranges back', async () => {
    const d = await connect(f);
    try {
      const data = pattern(3 << 20, 1);
      const w = await d.openWrite('a/one.bin', { truncate: true });
      // positional writes in any order, as the HDF5 writer issues them
      await w.write(1 << 20, data.subarray(1 << 20));
      await w.write(0, data.subarray(0, 1 << 20));
      await w.close();
      assert.ok((await f.server.object('lab', 'runs/a/one.bin'))!.equals(data));
      assert.deepEqual(await d.list('.'), ['a']);
      assert.deepEqual(await d.list('a'), ['one.bin']);
      assert.equal((await d.stat('a'))?.isDirectory, true);
      const st = await d.stat('a/one.bin');
      assert.equal(st?.size, data.length);
      assert.ok(Math.abs(st!.mtimeMs - Date.now()) < 120_000);
      assert.equal(await d.stat('a/none'), null);
      const r = await d.openRead('a/one.bin');
      assert.ok(Buffer.from(await r.read(2_000_000, 10)).equals(data.subarray(2_000_000, 2_000_010)));
      assert.ok(Buffer.from(await r.read(0, 2 << 20)).equals(data.subarray(0, 2 << 20)));
      await r.close();
    } finally {
      await d.close();
    }
  });

  it('holds a temporary (*.fur-partial) file until its rename, then stores it once under the final name', async () => {
    const d = await connect(f);
    try {
      const before = f.server.log.filter((l) => l.op === 'PutObject').length;
      await put(d, 'b/x.h5.fur-partial', Buffer.from('batch'));
      assert.equal(f.server.keys('lab').includes('runs/b/x.h5.fur-partial'), false, 'nothing is uploaded under the temporary name');
      assert.equal((await d.stat('b/x.h5.fur-partial'))?.size, 5);
      await d.rename('b/x.h5.fur-partial', 'b/x.h5');
      assert.equal((await f.server.object('lab', 'runs/b/x.h5'))?.toString(), 'batch');
      assert.equal(f.server.log.filter((l) => l.op === 'PutObject').length, before + 1, 'one PUT');
      assert.equal(await d.stat('b/x.h5.fur-partial'), null);
      // a stored object renames by copy + delete
      await d.rename('b/x.h5', 'b/y.h5');
      assert.deepEqual(await d.list('b'), ['y.h5']);
    } finally {
      await d.close();
    }
  });

  it('goes multipart above the part size, each part with its SHA-256', async () => {
    const d = await connect(f, 's3://lab/runs', { partSize: 5 << 20 });
    try {
      const data = pattern(12 << 20, 2);
      await put(d, 'c/big.bin', data);
      assert.ok((await f.server.object('lab', 'runs/c/big.bin'))!.equals(data));
      const parts = f.server.log.filter((l) => l.op === 'UploadPart' && l.key === 'runs/c/big.bin');
      assert.equal(parts.length, 3);
      assert.deepEqual(f.server.uploads('lab'), []);
      assert.equal(f.server.keys('lab').some((k) => k.includes('.fur-pending')), false, 'the marker is gone');
    } finally {
      await d.close();
    }
  });

  it('a part failing for good: nothing visible, the upload aborted, one clear error', async () => {
    const d = await connect(f, 's3://lab/runs', { partSize: 5 << 20 });
    try {
      f.server.fault((r) => (r.op === 'UploadPart' && r.partNumber === 2 ? 'error' : undefined));
      const e = await rejectsWith(put(d, 'd/big.bin', pattern(11 << 20, 3)), 'remote-failed');
      assert.match(e.message, /part 2/);
      assert.equal(f.server.keys('lab').includes('runs/d/big.bin'), false);
      assert.deepEqual(f.server.uploads('lab'), []);
      // a connection cut mid-part is retried by the SDK and succeeds
      let drops = 0;
      f.server.fault((r) => (r.op === 'UploadPart' && r.partNumber === 2 && drops++ === 0 ? 'drop' : undefined));
      const data = pattern(11 << 20, 4);
      await put(d, 'd/big.bin', data);
      assert.ok((await f.server.object('lab', 'runs/d/big.bin'))!.equals(data));
    } finally {
      f.server.fault(undefined);
      await d.close();
    }
  });

  it('aborts the multipart uploads a killed run recorded, and never touches others', async () => {
    const client = (await connect(f)).client;
    const mine = await client.send(new CreateMultipartUploadCommand({ Bucket: 'lab', Key: 'runs/e/killed.h5' }));
    await client.send(new PutObjectCommand({ Bucket: 'lab', Key: markerKey('runs/e/killed.h5', mine.UploadId!), Body: JSON.stringify({ key: 'runs/e/killed.h5', uploadId: mine.UploadId }) }));
    // someone else's upload under the same prefix, with no marker of fur's
    const theirs = await client.send(new CreateMultipartUploadCommand({ Bucket: 'lab', Key: 'runs/e/theirs.bin' }));
    const warnings: string[] = [];
    const d = await connect(f, 's3://lab/runs/e', { warn: (m) => warnings.push(m) });
    try {
      // the sweep runs before the first write of a session (not for readers)
      assert.equal(f.server.uploads('lab').length, 2);
      await put(d, 'new.bin', Buffer.from('x'));
      assert.deepEqual(f.server.uploads('lab').map((u) => u.uploadId), [theirs.UploadId]);
      assert.match(warnings.join('\n'), /aborted 1 multipart upload/);
      assert.deepEqual(await d.list('.'), ['new.bin']);
    } finally {
      await d.close();
      client.destroy();
    }
  });

  it('keeps working with bucket versioning on', async () => {
    f.server.createBucket('versioned', { versioning: true });
    const d = await connect(f, 's3://versioned/p');
    try {
      await put(d, 'v.bin', Buffer.from('one'));
      await put(d, 'v.bin', Buffer.from('two'));
      assert.equal((await f.server.object('versioned', 'p/v.bin'))?.toString(), 'two');
      await d.remove('v.bin');
      assert.equal(await d.stat('v.bin'), null);
      assert.deepEqual(await d.list('.'), []);
    } finally {
      await d.close();
    }
  });
});

describe('s3 destination: refusals, one line each', () => {
  let f: Fixture;
  before(async () => { f = await fixture(); });
  after(async () => { await f.cleanup(); });

  const oneLine = (m: string) => assert.doesNotMatch(m, /\n/);

  it('wrong secret key', async () => {
    const e = await rejectsWith(connect(f, 's3://lab/x', { credentials: { ...f.server.credentials, secretAccessKey: 'wrong' } }), 'auth-failed');
    assert.match(e.message, /SignatureDoesNotMatch/);
    assert.doesNotMatch(e.message, /wrong/);
    oneLine(e.message);
  });

  it('unknown access key', async () => {
    const e = await rejectsWith(connect(f, 's3://lab/x', { credentials: { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' } }), 'auth-failed');
    assert.match(e.message, /InvalidAccessKeyId/);
    oneLine(e.message);
  });

  it('missing bucket', async () => {
    const e = await rejectsWith(connect(f, 's3://no-such-bucket/x'), 'not-found');
    assert.match(e.message, /bucket 'no-such-bucket' does not exist/);
    oneLine(e.message);
  });

  it('access denied: listing, then writing', async () => {
    f.server.deny({ action: 'ListBucket', prefix: 'closed/' });
    const e = await rejectsWith(connect(f, 's3://lab/closed'), 'permission-denied');
    assert.match(e.message, /ListBucket/);
    oneLine(e.message);
    f.server.allowAll();
    f.server.deny({ action: 'PutObject', prefix: 'readonly/' });
    const d = await connect(f, 's3://lab/readonly');
    try {
      const w = await d.openWrite('x.bin', { truncate: true });
      await w.write(0, Buffer.from('x'));
      const e2 = await rejectsWith(w.close(), 'permission-denied');
      assert.match(e2.message, /access denied for upload/);
      oneLine(e2.message);
    } finally {
      f.server.allowAll();
      await d.close();
    }
  });

  it('an untrusted certificate, and one for another name', async () => {
    const e = await rejectsWith(connect(f, 's3://lab/x', { caFile: undefined }), 'tls-certificate');
    assert.match(e.message, /--ca-file/);
    oneLine(e.message);
    const { dir, cleanup } = await scratch('fur-s3-name-');
    const other = makeCertificate({ dnsNames: ['archive.lab'] });
    const g = await startS3Server({ root: join(dir, 'store'), buckets: ['lab'], certificate: other });
    try {
      await writeFile(join(dir, 'other.pem'), other.cert);
      const e2 = await rejectsWith(S3Destination.connect({ bucket: 'lab', prefix: 'x', params: {} }, { endpoint: g.endpoint, caFile: join(dir, 'other.pem'), credentials: g.credentials }), 'tls-certificate');
      assert.match(e2.message, /archive\.lab/);
      oneLine(e2.message);
    } finally {
      await g.close();
      await cleanup();
    }
  });

  it('no endpoint answering', async () => {
    const e = await rejectsWith(connect(f, 's3://lab/x', { endpoint: 'https://127.0.0.1:1' }), 'connect-failed');
    oneLine(e.message);
  });

  it('a part whose bytes do not match its SHA-256 is refused by the server', async () => {
    const d = await connect(f);
    try {
      const up = await d.client.send(new CreateMultipartUploadCommand({ Bucket: 'lab', Key: 'sum.bin', ChecksumAlgorithm: 'SHA256' }));
      const body = Buffer.from('abc');
      await assert.rejects(d.client.send(new UploadPartCommand({ Bucket: 'lab', Key: 'sum.bin', UploadId: up.UploadId, PartNumber: 1, Body: body, ChecksumSHA256: createHash('sha256').update('abd').digest('base64') })),
        (e: Error) => e.name === 'BadDigest' || e.name === 'XAmzContentSHA256Mismatch');
    } finally {
      await d.close();
    }
  });
});
