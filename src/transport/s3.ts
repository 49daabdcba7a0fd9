/**
 * A prefix in an S3 bucket (AWS, or any S3-compatible service through --endpoint). Objects are
 * written whole and appear atomically when their upload completes, so:
 *  - files are built locally (StagedFile) and uploaded at close: one PUT, or a multipart upload
 *    with per-part SHA-256 above `partSize`;
 *  - a file written under fur's temporary name (`*.fur-partial`) is not uploaded at close but held
 *    until it is renamed, then uploaded once under its final name — S3 has no rename, and the
 *    upload itself is the atomic publication;
 *  - `append` to one object is a multipart upload that stays open while capture goes on
 *    (pipeline/s3-hdf5-target.ts, its record pipeline/s3-journal.ts); capabilities.positionalWrite is
 *    false for everything else.
 */
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client,
} from '@aws-sdk/client-s3';
import { posix } from 'node:path';
import { FurError, remoteFields } from '../errors.js';
import type { Capabilities, Destination, ExclusiveRecord, RemoteFile, RemoteStat } from './destination.js';
import { s3Record } from './s3-exclusive.js';
import { StagedFile, type StagedContent } from './ftps-staged.js';
import { makeS3Client, type S3ClientOptions } from './s3-client.js';
import { s3Error } from './s3-errors.js';
import { WindowedReadFile } from './windowed-read.js';
import { MiB, PENDING_DIR, putObject, sweepPending, type Swept, type Uploader } from './s3-upload.js';

export interface S3Options extends S3ClientOptions {
  /** part size of multipart uploads, and the size above which objects go multipart (default 8 MiB, at least 5 MiB) */
  partSize?: number;
  /** parts in flight at once (default 4) */
  concurrency?: number;
  /** bytes a file may hold in memory while it is built before it spills to a local temporary file */
  stageMemoryLimit?: number;
  /** called with a one-line warning */
  warn?: (message: string) => void;
}

/** fur's temporary names: a batch (`x.h5.fur-partial`) or a sidecar (`.x.h5.kerchunk.json.fur-partial`) being written */
const HELD = /\.fur-partial$/;

export class S3Destination implements Destination {
  readonly url: string;
  readonly capabilities: Capabilities = {
    positionalWrite: false,
    // publishing a held temporary file uploads it under the new name: atomic, replacing
    rename: true,
    atomicReplace: true,
    fsync: false,
    // an object exists only once S3 has stored it
    durableWrites: true,
  };
  readonly uploader: Uploader;
  /** temporary files waiting for their rename */
  private held = new Map<string, StagedContent>();
  private swept = false;
  /** how the client was made, for the lease's own (leaseView) */
  private clientOptions: S3ClientOptions = {};
  private view?: Promise<S3Destination>;

  private constructor(
    readonly client: S3Client,
    readonly bucket: string,
    /** key prefix of the destination, '' or ending without '/' */
    readonly root: string,
    readonly endpoint: string | undefined,
    private readonly opts: S3Options,
  ) {
    this.url = `s3://${bucket}${root ? `/${root}` : ''}`;
    this.uploader = { client, bucket, endpoint, partSize: Math.max(5 * MiB, opts.partSize ?? 8 * MiB), concurrency: opts.concurrency ?? 4 };
  }

  static async connect(target: { bucket: string; prefix: string; params: Record<string, string> }, opts: S3Options = {}): Promise<S3Destination> {
    const clientOptions = { ...opts, endpoint: opts.endpoint ?? target.params.endpoint, region: opts.region ?? target.params.region };
    const { client, endpoint } = await makeS3Client(clientOptions);
    const root = target.prefix.replace(/^\/+|\/+$/g, '');
    const dest = new S3Destination(client, target.bucket, root, endpoint, opts);
    dest.clientOptions = clientOptions;
    try {
      // credentials, bucket and listing rights, checked before anything is read or written
      await client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: root ? `${root}/` : '', MaxKeys: 1 }));
    } catch (e) {
      client.destroy();
      const f = s3Error(e, { op: 'list the destination', bucket: target.bucket, key: root, endpoint });
      if (f.tag === 'permission-denied') {
        throw new FurError('permission-denied', `s3://${target.bucket}/${root}: access denied listing the prefix; fur needs s3:ListBucket there to resume and to skip what is stored`, remoteFields(f), { cause: e });
      }
      throw f;
    }
    return dest;
  }

  /** The key of a path: relative to the destination prefix, or (absolute) to the bucket. */
  key(path: string): string {
    const joined = path.startsWith('/') ? path : `${this.root}/${path}`;
    const k = posix.normalize(`/${joined}`).replace(/^\/+/, '');
    return k === '.' ? '' : k.replace(/\/$/, '');
  }

  private ctx(op: string, key: string) { return { op, bucket: this.bucket, key, endpoint: this.endpoint }; }

  /** Before the first write of a session: abort multipart uploads a killed run of fur left under this prefix. */
  private async sweep(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    const r = await sweepPending(this.uploader, this.root).catch((e) => { this.opts.warn?.(`could not check for abandoned uploads: ${(e as Error).message}`); return { aborted: 0, stuck: 0 } as Swept; });
    const n = r.aborted;
    if (n) this.opts.warn?.(`${this.url}: aborted ${n} multipart upload${n > 1 ? 's' : ''} an earlier run of fur left unfinished`);
    if (r.stuck) {
      this.opts.warn?.(`${this.url}: ${r.stuck} multipart upload${r.stuck > 1 ? 's' : ''} an earlier run of fur left unfinished could not be aborted (${r.why}); they hold no finished file and stay pending until the server's own tools or a lifecycle rule remove them (markers in ${PENDING_DIR}/)`);
    }
  }

  async openWrite(path: string, opts: { truncate?: boolean } = {}): Promise<RemoteFile> {
    const key = this.key(path);
    await this.sweep();
    const file = new StagedFile(`s3://${this.bucket}/${key}`, async (content) => {
      if (HELD.test(key)) {
        this.held.get(key)?.release().catch(() => undefined);
        this.held.set(key, content);
        return 'keep';
      }
      await putObject(this.uploader, key, content);
    }, { memoryLimit: this.opts.stageMemoryLimit });
    if (!opts.truncate) {
      const st = await this.stat(path);
      if (st && !st.isDirectory && st.size > 0) await file.preload(await this.getRange(key, 0, st.size));
    }
    return file;
  }

  async openRead(path: string): Promise<RemoteFile> {
    const key = this.key(path);
    const held = this.held.get(key);
    if (held) return new WindowedReadFile(`s3://${this.bucket}/${key}`, held.size, (o, n) => held.read(o, n));
    let size: number;
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      size = h.ContentLength ?? 0;
    } catch (e) {
      throw s3Error(e, this.ctx('open for reading', key));
    }
    return new WindowedReadFile(`s3://${this.bucket}/${key}`, size, (o, n) => this.getRange(key, o, n));
  }

  /** Bytes [offset, offset + length) of an object (fewer at its end). */
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (length <= 0) return new Uint8Array(0);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }));
      return await r.Body!.transformToByteArray();
    } catch (e) {
      if ((e as { name?: string }).name === 'InvalidRange') return new Uint8Array(0);
      throw s3Error(e, this.ctx('read', key));
    }
  }

  async stat(path: string): Promise<RemoteStat | null> {
    const key = this.key(path);
    const held = this.held.get(key);
    if (held) return { size: held.size, mtimeMs: Date.now(), isDirectory: false };
    if (key === '') return { size: 0, mtimeMs: 0, isDirectory: true };
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: h.ContentLength ?? 0, mtimeMs: h.LastModified?.getTime() ?? 0, isDirectory: false };
    } catch (e) {
      const f = s3Error(e, this.ctx('stat', key));
      if (f.tag !== 'not-found' || remoteFields(f).code === 'NoSuchBucket') throw f;
    }
    // a "directory" is a prefix other keys share
    try {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${key}/`, MaxKeys: 1 }));
      return (r.KeyCount ?? 0) > 0 ? { size: 0, mtimeMs: 0, isDirectory: true } : null;
    } catch (e) {
      throw s3Error(e, this.ctx('stat', key));
    }
  }

  exclusive(path: string): ExclusiveRecord {
    return s3Record(this, path);
  }

  /**
   * This prefix through a client (and connections) of its own: a lease renewed behind the
   * uploads queued for the client's 16 connections could expire on a slow link.
   */
  leaseView(): Promise<S3Destination> {
    this.view ??= makeS3Client({ ...this.clientOptions, maxSockets: 2 }).then(({ client }) => new S3Destination(client, this.bucket, this.root, this.endpoint, this.opts));
    return this.view;
  }

  /** Prefixes need no creating. */
  async mkdirp(): Promise<void> {}

  async rename(from: string, to: string): Promise<void> {
    const src = this.key(from);
    const dst = this.key(to);
    const held = this.held.get(src);
    if (held) {
      try {
        await putObject(this.uploader, dst, held);
      } finally {
        this.held.delete(src);
        await held.release();
      }
      return;
    }
    // an object already stored: copy on the server, then delete the old name
    try {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: dst, CopySource: `${this.bucket}/${src.split('/').map(encodeURIComponent).join('/')}` }));
    } catch (e) {
      throw s3Error(e, this.ctx(`rename to ${dst}`, src));
    }
    await this.remove(from);
  }

  /** Removes an object; one that is already gone is not an error, and prefixes hold nothing to remove. */
  async remove(path: string): Promise<void> {
    const key = this.key(path);
    const held = this.held.get(key);
    if (held) { this.held.delete(key); await held.release(); return; }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (e) {
      const f = s3Error(e, this.ctx('remove', key));
      if (f.tag !== 'not-found') throw f;
    }
  }

  /** Names of the objects and sub-prefixes directly under `dir` (fur's own `.fur-pending` left out). */
  async list(dir: string): Promise<string[]> {
    const key = this.key(dir);
    const prefix = key ? `${key}/` : '';
    const names = new Set<string>();
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      } catch (e) {
        throw s3Error(e, this.ctx('list', prefix));
      }
      for (const o of page.Contents ?? []) names.add(o.Key!.slice(prefix.length));
      for (const p of page.CommonPrefixes ?? []) names.add(p.Prefix!.slice(prefix.length).replace(/\/$/, ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    for (const k of this.held.keys()) if (posix.dirname(k) === (key || '.')) names.add(posix.basename(k));
    names.delete(PENDING_DIR);
    names.delete('');
    return [...names].sort();
  }

  async close(): Promise<void> {
    for (const c of this.held.values()) await c.release().catch(() => undefined);
    this.held.clear();
    this.client.destroy();
    await this.view?.then((v) => v.close(), () => undefined);
  }
}

