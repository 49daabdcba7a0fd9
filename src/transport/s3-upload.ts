/**
 * Storing a whole file as one S3 object: one PUT up to `partSize`, a multipart upload above it
 * (parts uploaded several at once). Every request carries the SHA-256 of its bytes, which the
 * server checks, and the multipart completion names each part's checksum.
 *
 * A multipart upload leaves invisible parts behind if fur dies mid-way. Each one fur starts is
 * recorded by a small marker object under `<dir>/.fur-pending/` while it runs; `sweepPending`
 * aborts the uploads those markers name. Uploads fur did not record are never touched.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  ListObjectsV2Command, GetObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { s3Error } from './s3-errors.js';

export const PENDING_DIR = '.fur-pending';
export const MiB = 1 << 20;
/** S3's smallest part but the last */
export const MIN_PART = 5 * MiB;
export const MAX_PARTS = 10_000;

export interface Uploader {
  client: S3Client;
  bucket: string;
  endpoint?: string;
  /** bytes per part, and the size above which an object goes multipart (default 8 MiB) */
  partSize: number;
  /** parts in flight at once (default 4) */
  concurrency: number;
}

/** Anything that can hand out its bytes by range. */
export interface Source { size: number; read(offset: number, length: number): Promise<Uint8Array> }

export function sha256b64(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('base64');
}

/** The key of the marker of upload `uploadId` to `key`. */
export function markerKey(key: string, uploadId: string): string {
  const dir = posix.dirname(key);
  return `${dir === '.' ? '' : `${dir}/`}${PENDING_DIR}/${encodeURIComponent(uploadId)}`;
}

export async function putObject(u: Uploader, key: string, src: Source): Promise<{ versionId?: string }> {
  if (src.size <= u.partSize) {
    const body = await src.read(0, src.size);
    try {
      const r = await u.client.send(new PutObjectCommand({ Bucket: u.bucket, Key: key, Body: body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: sha256b64(body) }));
      return { versionId: r.VersionId };
    } catch (e) {
      throw s3Error(e, { op: 'upload', bucket: u.bucket, key, endpoint: u.endpoint });
    }
  }
  return multipartPut(u, key, src);
}

async function multipartPut(u: Uploader, key: string, src: Source): Promise<{ versionId?: string }> {
  const ctx = { bucket: u.bucket, key, endpoint: u.endpoint };
  // parts grow if the object would need more than 10,000 of them
  const partSize = Math.max(u.partSize, Math.ceil(src.size / MAX_PARTS));
  let uploadId: string;
  try {
    const r = await u.client.send(new CreateMultipartUploadCommand({ Bucket: u.bucket, Key: key, ChecksumAlgorithm: 'SHA256' }));
    uploadId = r.UploadId!;
  } catch (e) {
    throw s3Error(e, { ...ctx, op: 'start a multipart upload' });
  }
  const marker = markerKey(key, uploadId);
  try {
    await u.client.send(new PutObjectCommand({ Bucket: u.bucket, Key: marker, Body: JSON.stringify({ key, uploadId, started: new Date().toISOString() }), ContentType: 'application/json' }))
      .catch((e) => { throw s3Error(e, { ...ctx, key: marker, op: 'record the pending upload' }); });
    const count = Math.ceil(src.size / partSize);
    const parts: { PartNumber: number; ETag: string; ChecksumSHA256: string }[] = new Array(count);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const body = await src.read(i * partSize, Math.min(partSize, src.size - i * partSize));
        const sum = sha256b64(body);
        const r = await u.client.send(new UploadPartCommand({ Bucket: u.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: sum }))
          .catch((e) => { throw s3Error(e, { ...ctx, op: `upload part ${i + 1} of ${count}` }); });
        parts[i] = { PartNumber: i + 1, ETag: r.ETag!, ChecksumSHA256: sum };
      }
    };
    await Promise.all(Array.from({ length: Math.min(u.concurrency, count) }, worker));
    const done = await u.client.send(new CompleteMultipartUploadCommand({ Bucket: u.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }))
      .catch((e) => { throw s3Error(e, { ...ctx, op: 'complete the multipart upload' }); });
    await u.client.send(new DeleteObjectCommand({ Bucket: u.bucket, Key: marker })).catch(() => undefined);
    return { versionId: done.VersionId };
  } catch (e) {
    // nothing becomes visible: drop the parts, then the marker (kept if the abort failed, so a later sweep retries)
    const aborted = await u.client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: key, UploadId: uploadId })).then(() => true, () => false);
    if (aborted) await u.client.send(new DeleteObjectCommand({ Bucket: u.bucket, Key: marker })).catch(() => undefined);
    throw e;
  }
}

/** What a sweep did: uploads aborted, and those the server would not abort (their markers stay, for a later sweep). */
export interface Swept { aborted: number; stuck: number; why?: string }

/**
 * Abort the multipart uploads fur recorded under `<dir>/.fur-pending/` and did not finish (a
 * killed run).
 */
export async function sweepPending(u: Uploader, dir: string): Promise<Swept> {
  const prefix = `${dir ? `${dir.replace(/\/$/, '')}/` : ''}${PENDING_DIR}/`;
  let token: string | undefined;
  const out: Swept = { aborted: 0, stuck: 0 };
  do {
    const page = await u.client.send(new ListObjectsV2Command({ Bucket: u.bucket, Prefix: prefix, ContinuationToken: token }))
      .catch((e) => { throw s3Error(e, { op: 'list pending uploads', bucket: u.bucket, key: prefix, endpoint: u.endpoint }); });
    for (const o of page.Contents ?? []) {
      let record: { key?: string; uploadId?: string } = {};
      try {
        const r = await u.client.send(new GetObjectCommand({ Bucket: u.bucket, Key: o.Key! }));
        record = JSON.parse(await r.Body!.transformToString()) as typeof record;
      } catch {
        continue;
      }
      if (!record.key || !record.uploadId) continue;
      const gone = await u.client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: record.key, UploadId: record.uploadId }))
        .then(() => { out.aborted++; return true; }, (e: { name?: string; message?: string }) => {
          if (e?.name === 'NoSuchUpload') return true;
          out.stuck++;
          out.why ??= `AbortMultipartUpload: ${e?.name && e.name !== 'Error' ? e.name : e?.message}`;
          return false;
        });
      if (gone) await u.client.send(new DeleteObjectCommand({ Bucket: u.bucket, Key: o.Key! })).catch(() => undefined);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}
