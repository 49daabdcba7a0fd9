/**
 * The exclusive record on S3. A conditional PUT (`If-None-Match: *`) stores an object only where
 * none is: AWS S3 (since 2024) and fur's test server refuse it with 412 when the key exists. A
 * store that ignores the header overwrites instead, which would let a second run replace a live
 * lease; so before the first record is created, each destination finds out once, with a probe:
 * the same conditional PUT twice on a scratch key — the second must be refused. Where it is not,
 * the record is made of claims (ClaimsRecord), which need only consistent listing.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { ExclusiveRecord } from './destination.js';
import { ClaimsRecord } from './exclusive.js';
import { s3Error } from './s3-errors.js';
import { remoteFields } from '../errors.js';
import { putObject } from './s3-upload.js';
import { listVersions } from './s3-versions.js';
import type { S3Destination } from './s3.js';

const honours = new WeakMap<S3Destination, Promise<boolean>>();

interface SdkError { name?: string; $metadata?: { httpStatusCode?: number } }
/** 412 PreconditionFailed; 409 ConditionalRequestConflict (AWS: another conditional write to the key is in progress) */
const refused = (e: unknown) => [409, 412].includes((e as SdkError)?.$metadata?.httpStatusCode ?? 0);
const unknown = (e: unknown) => (e as SdkError)?.$metadata?.httpStatusCode === 501 || (e as SdkError)?.name === 'NotImplemented';

export function s3Record(main: S3Destination, path: string): ExclusiveRecord {
  let record: Promise<ExclusiveRecord> | undefined;
  const pick = (): Promise<ExclusiveRecord> => (record ??= (async () => {
    // its own connections: the lease's requests do not queue behind the run's uploads
    const dest = await main.leaseView();
    // a claim is put as it is: S3Destination's own first write would sweep abandoned uploads first
    const store = async (p: string, data: Uint8Array) => { await putObject(dest.uploader, dest.key(p), { size: data.length, read: async (o, n) => data.subarray(o, o + n) }); };
    return await honoursIfNoneMatch(main, dest, dest.key(path)) ? new ConditionalRecord(dest, dest.key(path)) : new ClaimsRecord(dest, path, store);
  })());
  return {
    create: async (data) => (await pick()).create(data),
    read: async () => (await pick()).read(),
    replace: async (data) => (await pick()).replace(data),
    remove: async () => (await pick()).remove(),
  };
}

/** Whether the store refuses a conditional PUT onto an existing key: found out once per destination. */
function honoursIfNoneMatch(main: S3Destination, dest: S3Destination, near: string): Promise<boolean> {
  let h = honours.get(main);
  if (!h) {
    h = probe(dest, near);
    honours.set(main, h);
    h.catch(() => honours.delete(main)); // a failed probe (a lost link) is tried again
  }
  return h;
}

async function probe(dest: S3Destination, near: string): Promise<boolean> {
  const dir = posix.dirname(near);
  const key = `${dir === '.' ? '' : `${dir}/`}.fur-probe-${randomBytes(8).toString('hex')}`;
  const ctx = { op: 'create a lease', bucket: dest.bucket, key, endpoint: dest.endpoint };
  // in a versioned bucket a plain DELETE only stacks a delete marker on the versions: each one
  // written is deleted by its id, so a probe leaves nothing behind to be billed
  const written: (string | undefined)[] = [];
  const put = async () => { written.push((await dest.client.send(new PutObjectCommand({ Bucket: dest.bucket, Key: key, Body: 'fur: does this store honour If-None-Match?', IfNoneMatch: '*' }))).VersionId); };
  try {
    await put();
  } catch (e) {
    // a store that does not know the header may say so rather than ignore it
    if (unknown(e)) return false;
    throw s3Error(e, ctx);
  }
  try {
    await put();
    return false;
  } catch (e) {
    if (refused(e)) return true;
    if (unknown(e)) return false;
    throw s3Error(e, ctx);
  } finally {
    await deleteVersions(dest, key, written);
  }
}

/** Delete the versions of `key` named (by id; a plain DELETE for an unversioned write). */
async function deleteVersions(dest: S3Destination, key: string, versions: (string | undefined)[]): Promise<void> {
  for (const v of new Set(versions)) {
    await dest.client.send(new DeleteObjectCommand({ Bucket: dest.bucket, Key: key, VersionId: v === 'null' ? undefined : v })).catch(() => undefined);
  }
}

/**
 * The ids of every version (and delete marker) of exactly `key`, the current one last; [] where
 * the store keeps no versions or does not list them.
 */
async function versionsOf(dest: S3Destination, key: string): Promise<string[]> {
  const all = (await listVersions(dest, key).catch(() => [])).filter((v) => v.key === key && v.versionId !== undefined);
  return [...all.filter((v) => !v.latest), ...all.filter((v) => v.latest)].map((v) => v.versionId!);
}

/**
 * One object, created by a conditional PUT. In a versioned bucket every renewal would otherwise
 * leave a version behind (one per renewal, for as long as a capture runs): the version a renewal
 * replaces is deleted by its id, and removing the record deletes every version of it.
 */
class ConditionalRecord implements ExclusiveRecord {
  /** the version this process wrote last, where the bucket keeps versions */
  private version: string | undefined;

  constructor(private readonly dest: S3Destination, private readonly key: string) {}

  private ctx(op: string) { return { op, bucket: this.dest.bucket, key: this.key, endpoint: this.dest.endpoint }; }

  async create(data: Uint8Array): Promise<boolean> {
    try {
      this.version = (await this.dest.client.send(new PutObjectCommand({ Bucket: this.dest.bucket, Key: this.key, Body: data, IfNoneMatch: '*' }))).VersionId;
      return true;
    } catch (e) {
      if (refused(e)) return false;
      throw s3Error(e, this.ctx('create a lease'));
    }
  }

  async read(): Promise<Uint8Array | null> {
    try {
      const r = await this.dest.client.send(new GetObjectCommand({ Bucket: this.dest.bucket, Key: this.key }));
      return await r.Body!.transformToByteArray();
    } catch (e) {
      return this.absent(e, 'read the lease');
    }
  }

  async replace(data: Uint8Array): Promise<boolean> {
    try {
      await this.dest.client.send(new HeadObjectCommand({ Bucket: this.dest.bucket, Key: this.key }));
    } catch (e) {
      return (await this.absent(e, 'read the lease')) ?? false;
    }
    const r = await this.dest.client.send(new PutObjectCommand({ Bucket: this.dest.bucket, Key: this.key, Body: data }))
      .catch((e) => { throw s3Error(e, this.ctx('renew the lease')); });
    const before = this.version;
    this.version = r.VersionId;
    // only a version this process wrote itself, and only once a newer one stands
    if (before && before !== 'null' && before !== r.VersionId) await deleteVersions(this.dest, this.key, [before]);
    return true;
  }

  async remove(): Promise<void> {
    // listed before the current version goes, so a record another run creates after it is kept
    const versions = await versionsOf(this.dest, this.key);
    // no versions kept (or listed): one plain DELETE of the key
    for (const v of versions.length ? versions : [undefined]) {
      await this.dest.client.send(new DeleteObjectCommand({ Bucket: this.dest.bucket, Key: this.key, VersionId: v }))
        .catch((e) => { if (s3Error(e, this.ctx('remove the lease')).tag !== 'not-found') throw s3Error(e, this.ctx('remove the lease')); });
    }
    this.version = undefined;
  }

  /** null for a missing object; anything else is thrown */
  private absent(e: unknown, op: string): null {
    const f = s3Error(e, this.ctx(op));
    if (f.tag === 'not-found' && remoteFields(f).code !== 'NoSuchBucket') return null;
    throw f;
  }
}
