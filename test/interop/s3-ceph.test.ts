/**
 * Ceph RGW 16 (Debian's ceph-mon, ceph-osd on memstore, radosgw), a one-node cluster on
 * 127.0.0.1 started for this file and shared by its cases: the S3 many facilities run. Every
 * method with --delete-source, verify, kill -9 and resume (support/ceph.ts; s3-field.ts), and
 * what fur's bookkeeping leaves: no pending upload, no record.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { startCephRgw, type CephRgw } from './support/ceph.js';
import { fieldCases } from './s3-field.js';

const work = mkdtempSync(join(tmpdir(), 'fur-interop-ceph-'));
let ceph: CephRgw;
let client: S3Client;

before(async () => {
  ceph = await startCephRgw();
  process.stderr.write(`# Ceph RGW on ${ceph.endpoint} started in ${ceph.startupMs} ms (${ceph.steps.map(([s, ms]) => `${s} ${ms}`).join(', ')})\n`);
  client = new S3Client({ endpoint: ceph.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: ceph.credentials });
  await client.send(new CreateBucketCommand({ Bucket: 'lab' }));
});
after(async () => {
  client?.destroy();
  await ceph?.stop();
  rmSync(work, { recursive: true, force: true });
});

fieldCases('Ceph RGW', { conditionalCreate: 'refused', listsParts: true, aborts: true }, () => ({ endpoint: ceph.endpoint, credentials: ceph.credentials, bucket: 'lab', work }));

describe('Ceph RGW: after every case', () => {
  test('no multipart upload is left pending in the bucket', async () => {
    const r = await client.send(new ListMultipartUploadsCommand({ Bucket: 'lab' }));
    assert.deepEqual((r.Uploads ?? []).map((u) => u.Key), []);
  });
});
