/**
 * s3rver (npm), run as a child process with --openssl-legacy-provider: an S3 look-alike without
 * ListParts, ListMultipartUploads, AbortMultipartUpload or ListObjectVersions, which ignores
 * If-None-Match on PUT. Every method with --delete-source, verify, kill -9 and resume — the
 * resume from fur's own record of the parts (s3-field.ts; support/s3rver.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startS3rver, type S3rver } from './support/s3rver.js';
import { fieldCases } from './s3-field.js';

const work = mkdtempSync(join(tmpdir(), 'fur-interop-s3rver-'));
let s3rver: S3rver;

before(async () => { s3rver = await startS3rver({ buckets: ['lab'] }); });
after(async () => {
  await s3rver?.stop();
  rmSync(work, { recursive: true, force: true });
});

fieldCases('s3rver', { conditionalCreate: 'replaces', listsParts: false, aborts: false }, () => ({ endpoint: s3rver.endpoint, credentials: s3rver.credentials, bucket: 'lab', work }));
