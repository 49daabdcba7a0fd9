/**
 * One HDF5 file written as one S3 object while capture goes on: a multipart upload that stays
 * open, fed by the HDF5 writer through this sink.
 *
 * The writer keeps all metadata in a region at the front of the file (`metaEnd` bytes) and
 * appends raw data after it. The sink keeps the metadata region in memory — it changes at every
 * commit — and streams the data as it comes: bytes at offsets ≥ metaEnd are cut into parts 2, 3, …
 * in file order and uploaded several at once. When the capture ends, the metadata region, now
 * final and consolidated, is uploaded as part 1 (S3 accepts parts in any order) and the upload
 * completed: the object is an ordinary HDF5 file whose whole structure lies in its first part.
 *
 * That only works if data bytes, once written, never change: the writer must commit with
 * `{ complete: true }` (whole chunks only; partial tails stay in memory until the end). A write
 * below the bytes already cut into parts is refused with 'append-order' rather than silently
 * lost. Nothing is visible in the bucket until `complete`.
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { FurError } from '../errors.js';
import type { RandomAccess } from '../hdf5/sink.js';
import { s3Error } from './s3-errors.js';
import { MAX_PARTS, MiB, MIN_PART, sha256b64, type Uploader } from './s3-upload.js';

/** Part 1 holds exactly the metadata region: at least S3's smallest part, and room for a very large index. */
export const META_END = 5 * MiB;

export interface PartRecord { n: number; offset: number; size: number; etag: string; sha256: string }

/** Size of data part `n` (n ≥ 2): doubling every 1,000 parts, so 10,000 parts reach ~8 TB. */
export function partSizeFor(n: number, base: number): number {
  return base * 2 ** Math.min(9, Math.floor((n - 2) / 1000));
}

export interface PartSinkState {
  /** parts uploaded and acknowledged */
  parts: PartRecord[];
  /** file offset where the bytes not yet in a part begin */
  base: number;
  /** those bytes, [base, base + pending.length) */
  pending: Uint8Array;
  /** bytes [0, metaUsed) of the metadata region (the rest is zeros) */
  meta: Uint8Array;
}

export class S3PartSink implements RandomAccess {
  readonly metaEnd: number;
  private meta: Uint8Array;
  private metaHigh = 0;
  private base: number;
  private buf: Uint8Array;
  private len = 0;
  private nextPart: number;
  private readonly done = new Map<number, PartRecord>();
  private queue: { n: number; offset: number; bytes: Uint8Array }[] = [];
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private failure: unknown;
  private closed = false;
  private completed = false;

  constructor(private readonly u: Uploader, readonly key: string, readonly uploadId: string, opts: { metaEnd?: number; resume?: PartSinkState } = {}) {
    this.metaEnd = opts.metaEnd ?? META_END;
    this.meta = new Uint8Array(this.metaEnd);
    const r = opts.resume;
    if (r) {
      this.meta.set(r.meta);
      this.metaHigh = r.meta.length;
      for (const p of r.parts) this.done.set(p.n, p);
      this.base = r.base;
      this.buf = new Uint8Array(Math.max(1 << 20, r.pending.length * 2));
      this.buf.set(r.pending);
      this.len = r.pending.length;
      this.nextPart = Math.max(1, ...r.parts.map((p) => p.n)) + 1;
    } else {
      this.base = this.metaEnd;
      this.buf = new Uint8Array(1 << 20);
      this.nextPart = 2;
    }
  }

  /** bytes of the metadata region in use (what a reader needs to see the whole structure) */
  get metaUsed(): number { return this.metaHigh; }
  /** the file's physical end */
  get end(): number { return this.base + this.len; }

  write(offset: number, data: Uint8Array): Promise<void> {
    try {
      this.put(offset, data);
      return Promise.resolve();
    } catch (e) {
      this.failure ??= e;
      const p = Promise.reject(this.failure);
      p.catch(() => {});
      return p;
    }
  }

  private put(offset: number, data: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new FurError('file-closed', `s3://${this.u.bucket}/${this.key} was written after it was closed (a bug in the caller)`, { key: this.key });
    const end = offset + data.length;
    if (end <= this.metaEnd) {
      this.meta.set(data, offset);
      this.metaHigh = Math.max(this.metaHigh, end);
      return;
    }
    if (offset < this.base) {
      const part = [...this.done.values()].find((p) => offset >= p.offset && offset < p.offset + p.size) ?? this.queue.find((p) => offset >= p.offset && offset < p.offset + p.bytes.length);
      throw new FurError('append-order',
        `s3://${this.u.bucket}/${this.key}: the HDF5 writer rewrote ${data.length} bytes at offset ${offset}, which ${offset < this.metaEnd ? 'cross the end of the metadata region' : `were already uploaded${part ? ` in part ${part.n}` : ''}`}; an S3 object cannot change once a part is sent (a bug in fur: data must be committed whole)`,
        { key: this.key, offset, length: data.length });
    }
    const rel = offset - this.base;
    if (rel + data.length > this.buf.length) {
      let cap = this.buf.length;
      while (cap < rel + data.length) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(data, rel);
    this.len = Math.max(this.len, rel + data.length);
    // stream full parts as soon as they exist, keeping at least one smallest part behind so
    // that what is left at a checkpoint can always go as a part of its own
    for (let size = partSizeFor(this.nextPart, this.u.partSize); this.len >= size + MIN_PART; size = partSizeFor(this.nextPart, this.u.partSize)) this.cut(size);
  }

  /** Send the first `size` buffered bytes as the next part. */
  private cut(size: number): void {
    if (this.nextPart > MAX_PARTS) {
      throw new FurError('too-many-parts', `s3://${this.u.bucket}/${this.key}: the capture outgrew S3's ${MAX_PARTS} parts per object; start a new object (new file name) to continue`, { key: this.key });
    }
    const bytes = this.buf.slice(0, size);
    this.buf.copyWithin(0, size, this.len);
    this.len -= size;
    this.queue.push({ n: this.nextPart++, offset: this.base, bytes });
    this.base += size;
    this.pump();
  }

  private pump(): void {
    while (this.inflight < this.u.concurrency && this.queue.length && this.failure === undefined) {
      const job = this.queue.shift()!;
      this.inflight++;
      this.upload(job.n, job.offset, job.bytes).then((rec) => {
        this.done.set(rec.n, rec);
      }, (e) => {
        this.failure ??= e;
      }).finally(() => {
        this.inflight--;
        this.pump();
        if (this.inflight === 0 && (this.queue.length === 0 || this.failure !== undefined)) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async upload(n: number, offset: number, bytes: Uint8Array): Promise<PartRecord> {
    const sha256 = sha256b64(bytes);
    try {
      const r = await this.u.client.send(new UploadPartCommand({
        Bucket: this.u.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: n, Body: bytes, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: sha256,
      }));
      return { n, offset, size: bytes.length, etag: r.ETag!, sha256 };
    } catch (e) {
      throw s3Error(e, { op: `upload part ${n}`, bucket: this.u.bucket, key: this.key, endpoint: this.u.endpoint });
    }
  }

  /** Every part cut so far acknowledged (or the first failure). */
  private async idle(): Promise<void> {
    if (this.inflight > 0 || (this.queue.length && this.failure === undefined)) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Make what was written durable as far as S3 allows: buffered data of at least one smallest
   * part goes as a part; smaller remainders stay pending (the caller keeps a copy elsewhere).
   * Resolves once every part is acknowledged, with what a resumed run needs.
   */
  async checkpoint(): Promise<PartSinkState> {
    if (this.failure !== undefined) throw this.failure;
    if (this.len >= MIN_PART) this.cut(this.len);
    await this.idle();
    return this.state();
  }

  state(): PartSinkState {
    return {
      parts: [...this.done.values()].sort((a, b) => a.n - b.n),
      base: this.base,
      pending: this.buf.slice(0, this.len),
      meta: this.meta.slice(0, this.metaHigh),
    };
  }

  /** Upload the rest and the metadata region (part 1), and complete: the object appears. */
  async complete(): Promise<{ size: number; etag?: string; versionId?: string; parts: number }> {
    if (this.failure !== undefined) throw this.failure;
    if (this.len > 0) this.cut(this.len);
    await this.idle();
    const part1 = await this.upload(1, 0, this.meta);
    this.done.set(1, part1);
    const parts = [...this.done.values()].sort((a, b) => a.n - b.n);
    const size = parts.reduce((n, p) => n + p.size, 0);
    try {
      const r = await this.u.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.u.bucket, Key: this.key, UploadId: this.uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ChecksumSHA256: p.sha256 })) },
      }));
      this.completed = true;
      return { size, etag: r.ETag, versionId: r.VersionId, parts: parts.length };
    } catch (e) {
      throw s3Error(e, { op: 'complete the upload', bucket: this.u.bucket, key: this.key, endpoint: this.u.endpoint });
    }
  }

  async abort(): Promise<void> {
    this.closed = true;
    this.failure ??= new FurError('upload-aborted', `s3://${this.u.bucket}/${this.key}: the upload was abandoned`, { key: this.key });
    await this.u.client.send(new AbortMultipartUploadCommand({ Bucket: this.u.bucket, Key: this.key, UploadId: this.uploadId })).catch((e) => {
      if ((e as { name?: string }).name !== 'NoSuchUpload') throw s3Error(e, { op: 'abort the upload', bucket: this.u.bucket, key: this.key, endpoint: this.u.endpoint });
    });
  }

  get isComplete(): boolean { return this.completed; }

  // ---- RandomAccess: the HDF5 writer reads back metadata (reopen) and, rarely, fresh data ----

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = offset + length;
    if (end <= this.metaEnd) return this.meta.slice(offset, end);
    if (offset >= this.base && end <= this.base + this.len) return this.buf.slice(offset - this.base, end - this.base);
    throw new FurError('not-readable', `s3://${this.u.bucket}/${this.key}: bytes ${offset}-${end} are in parts already uploaded, which S3 cannot read before the upload completes`, { key: this.key, offset, length });
  }

  async size(): Promise<number> { return this.base + this.len; }

  /** Data reaches S3 at checkpoints; between them a barrier only reports a failed part. */
  async flush(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
  }

  async sync(): Promise<void> { await this.flush(); }

  async close(): Promise<void> { this.closed = true; }
}
