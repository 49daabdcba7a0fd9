/**
 * One file written as one S3 object while it grows: a multipart upload that stays open, fed by a
 * writer through this sink.
 *
 * The writer keeps a region at the front of the file that it rewrites until the end (`metaEnd`
 * bytes, chosen by the caller: for HDF5, the metadata region of pipeline/s3-hdf5-target.ts) and
 * writes the rest after it, in file order. The sink keeps the front region in memory and streams
 * the rest: the bytes after metaEnd are divided, as they arrive, into parts 2, 3, … of
 * `partSize`, and a part is sent as soon as every byte of it has been written. Parts may go in
 * any order, so a part that still has a hole (a block the writer allocated and fills piece by
 * piece) waits in memory while the parts after it are sent. When the file ends the front region,
 * now final, is sent as part 1 and the upload completed.
 *
 * A write into a part already sent cannot be honoured (S3 objects do not change); it is refused
 * with 'append-order' instead of being lost: the writer must never rewrite what lies after the
 * front region. Nothing is visible until `complete`.
 *
 * For resuming, `checkpoint` returns the bytes written since the previous checkpoint that are
 * not in a part yet; the caller stores them (spills) and gives them back to a resumed sink.
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { FurError, remoteFields } from '../errors.js';
import type { RandomAccess } from '../hdf5/sink.js';
import { s3Error } from './s3-errors.js';
import { MAX_PARTS, MIN_PART, sha256b64, type Uploader } from './s3-upload.js';

export interface PartRecord { n: number; offset: number; size: number; etag: string; sha256: string }
/** A part whose bounds are fixed but which is not sent yet (it still has unwritten bytes). */
export interface HeldPart { n: number; offset: number; size: number }
/** Bytes written at `offset`. */
export interface Extent { offset: number; bytes: Uint8Array }

/** Size of data part `n` (n ≥ 2): doubling every 1,000 parts, so 10,000 parts reach ~8 TB. */
export function partSizeFor(n: number, base: number): number {
  return base * 2 ** Math.min(9, Math.floor((n - 2) / 1000));
}

/** Sorted, merged [start, end) ranges. */
export class Ranges {
  list: [number, number][] = [];
  add(start: number, end: number): void {
    if (end <= start) return;
    const out: [number, number][] = [];
    let placed = false;
    for (const [s, e] of this.list) {
      if (e < start) out.push([s, e]);
      else if (s > end) { if (!placed) { out.push([start, end]); placed = true; } out.push([s, e]); }
      else { start = Math.min(start, s); end = Math.max(end, e); }
    }
    if (!placed) out.push([start, end]);
    this.list = out;
  }
  covers(start: number, end: number): boolean {
    return end <= start || this.list.some(([s, e]) => s <= start && e >= end);
  }
  /** the parts of [start, end) covered */
  within(start: number, end: number): [number, number][] {
    return this.list.filter(([s, e]) => e > start && s < end).map(([s, e]) => [Math.max(s, start), Math.min(e, end)]);
  }
  /** the parts of [start, end) not covered */
  gaps(start: number, end: number): [number, number][] {
    const out: [number, number][] = [];
    let at = start;
    for (const [s, e] of this.within(start, end)) {
      if (s > at) out.push([at, s]);
      at = Math.max(at, e);
    }
    if (at < end) out.push([at, end]);
    return out;
  }
}

interface Segment {
  n: number;
  offset: number;
  size: number;
  buf: Uint8Array;
  written: Ranges;
  sending: boolean;
}

export interface PartSinkState {
  /** parts sent and acknowledged */
  parts: PartRecord[];
  /** parts with fixed bounds not sent yet */
  held: HeldPart[];
  /** where the bytes not yet assigned to a part begin */
  tailStart: number;
  /** the file's physical end */
  end: number;
  /** bytes [0, metaUsed) of the front region (the rest is zeros) */
  meta: Uint8Array;
}

export class S3PartSink implements RandomAccess {
  readonly metaEnd: number;
  private meta: Uint8Array;
  private metaHigh = 0;
  /** data parts not yet acknowledged, by number */
  private segments = new Map<number, Segment>();
  private tailStart: number;
  private tail: Uint8Array;
  private tailWritten = new Ranges();
  private frontier: number;
  private nextPart: number;
  private readonly done = new Map<number, PartRecord>();
  private dirty = new Ranges();
  private inflight = 0;
  private queue: Segment[] = [];
  private idleWaiters: Array<() => void> = [];
  private failure: unknown;
  private closed = false;

  constructor(private readonly u: Uploader, readonly key: string, readonly uploadId: string, opts: {
    /** the front region's size, sent last as part 1: at least S3's smallest part (MIN_PART) */
    metaEnd: number;
    /** continue an upload: its state at the last checkpoint and every extent written since it began */
    resume?: { state: PartSinkState; extents: Extent[] };
  }) {
    if (opts.metaEnd < MIN_PART) throw new FurError('internal', `s3://${u.bucket}/${key}: a front region of ${opts.metaEnd} bytes cannot be part 1, which S3 needs to be at least ${MIN_PART} (a bug in fur)`, { key });
    this.metaEnd = opts.metaEnd;
    this.meta = new Uint8Array(this.metaEnd);
    this.tail = new Uint8Array(1 << 20);
    const r = opts.resume;
    if (!r) {
      this.tailStart = this.metaEnd;
      this.frontier = this.metaEnd;
      this.nextPart = 2;
      return;
    }
    const s = r.state;
    this.meta.set(s.meta);
    this.metaHigh = s.meta.length;
    for (const p of s.parts) this.done.set(p.n, p);
    for (const h of s.held) this.segments.set(h.n, { ...h, buf: new Uint8Array(h.size), written: new Ranges(), sending: false });
    this.tailStart = s.tailStart;
    this.frontier = s.tailStart;
    this.nextPart = Math.max(1, ...s.parts.map((p) => p.n), ...s.held.map((h) => h.n)) + 1;
    // what was written but not sent, in the order it was stored (later extents win); bytes that
    // have reached a part since were stored by it
    for (const x of r.extents) {
      for (const [a, b] of this.unsent(x.offset, x.offset + x.bytes.length)) this.place(a, x.bytes.subarray(a - x.offset, b - x.offset));
    }
    this.frontier = Math.max(this.frontier, s.end);
    this.dirty = new Ranges();
  }

  /** bytes of the front region in use */
  get metaUsed(): number { return this.metaHigh; }
  /** the file's physical end */
  get end(): number { return this.frontier; }

  write(offset: number, data: Uint8Array): Promise<void> {
    try {
      if (this.failure !== undefined) throw this.failure;
      if (this.closed) throw new FurError('file-closed', `s3://${this.u.bucket}/${this.key} was written after it was closed (a bug in the caller)`, { key: this.key });
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
    const end = offset + data.length;
    if (end <= this.metaEnd) {
      this.meta.set(data, offset);
      this.metaHigh = Math.max(this.metaHigh, end);
      return;
    }
    this.place(offset, data);
    this.dirty.add(Math.max(offset, this.metaEnd), end);
    // parts are fixed as the data passes them, keeping one smallest part behind so that what is
    // left at a checkpoint can always go as a part of its own
    for (let size = partSizeFor(this.nextPart, this.u.partSize); this.frontier - this.tailStart >= size + MIN_PART; size = partSizeFor(this.nextPart, this.u.partSize)) {
      this.fix(size);
    }
  }

  /** Put bytes where they belong: a held part, or the unassigned tail. */
  private place(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (offset < this.metaEnd) {
      throw this.orderError(offset, data.length, 'cross the end of the front region');
    }
    if (offset < this.tailStart) {
      for (let at = offset; at < Math.min(end, this.tailStart);) {
        const seg = this.segmentAt(at);
        if (!seg) {
          const sent = [...this.done.values()].find((p) => at >= p.offset && at < p.offset + p.size);
          throw this.orderError(offset, data.length, `were already sent${sent ? ` in part ${sent.n}` : ''}`);
        }
        if (seg.sending) throw this.orderError(offset, data.length, `are being sent in part ${seg.n}`);
        const stop = Math.min(end, seg.offset + seg.size);
        seg.buf.set(data.subarray(at - offset, stop - offset), at - seg.offset);
        seg.written.add(at - seg.offset, stop - seg.offset);
        if (seg.written.covers(0, seg.size)) this.send(seg);
        at = stop;
      }
      if (end <= this.tailStart) return;
      data = data.subarray(this.tailStart - offset);
      offset = this.tailStart;
    }
    const rel = offset - this.tailStart;
    if (rel + data.length > this.tail.length) {
      let cap = this.tail.length;
      while (cap < rel + data.length) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.tail.subarray(0, this.frontier - this.tailStart));
      this.tail = next;
    }
    this.tail.set(data, rel);
    this.tailWritten.add(offset, offset + data.length);
    this.frontier = Math.max(this.frontier, offset + data.length);
  }

  private segmentAt(offset: number): Segment | undefined {
    for (const s of this.segments.values()) if (offset >= s.offset && offset < s.offset + s.size) return s;
    return undefined;
  }

  private orderError(offset: number, length: number, what: string): FurError {
    return new FurError('append-order',
      `s3://${this.u.bucket}/${this.key}: the writer rewrote ${length} bytes at offset ${offset}, which ${what}; an S3 object cannot change once a part is sent (a bug in fur)`,
      { key: this.key, offset, length });
  }

  /** The first `size` bytes of the tail become the next part: sent now if whole, else held until they are. */
  private fix(size: number): void {
    if (this.nextPart > MAX_PARTS) {
      throw new FurError('too-many-parts', `s3://${this.u.bucket}/${this.key}: the capture outgrew S3's ${MAX_PARTS} parts per object; start a new object (new file name) to continue`, { key: this.key });
    }
    const offset = this.tailStart;
    const seg: Segment = { n: this.nextPart++, offset, size, buf: this.tail.slice(0, size), written: new Ranges(), sending: false };
    for (const [s, e] of this.tailWritten.within(offset, offset + size)) seg.written.add(s - offset, e - offset);
    const rest = new Ranges();
    for (const [s, e] of this.tailWritten.list) if (e > offset + size) rest.add(Math.max(s, offset + size), e);
    this.tailWritten = rest;
    const used = Math.max(size, this.frontier - offset);
    this.tail.copyWithin(0, size, used);
    // bytes never written read as zeros, as in a file
    this.tail.fill(0, used - size, used);
    this.tailStart += size;
    this.segments.set(seg.n, seg);
    if (seg.written.covers(0, size)) this.send(seg);
  }

  private send(seg: Segment): void {
    if (seg.sending) return;
    seg.sending = true;
    this.queue.push(seg);
    this.pump();
  }

  private pump(): void {
    while (this.inflight < this.u.concurrency && this.queue.length && this.failure === undefined) {
      const seg = this.queue.shift()!;
      this.inflight++;
      this.upload(seg.n, seg.offset, seg.buf).then((rec) => {
        this.done.set(rec.n, rec);
        this.segments.delete(seg.n);
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

  private async idle(): Promise<void> {
    if (this.inflight > 0 || (this.queue.length && this.failure === undefined)) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Send what can be sent — a whole remainder of at least one smallest part goes as a part of its
   * own — and wait until every part sent is acknowledged. Returns the state and the extents written
   * since the previous checkpoint that are in no acknowledged part: together with the earlier
   * ones, what a resumed sink needs.
   */
  async checkpoint(): Promise<{ state: PartSinkState; extents: Extent[] }> {
    if (this.failure !== undefined) throw this.failure;
    const size = this.frontier - this.tailStart;
    if (size >= MIN_PART && this.tailWritten.covers(this.tailStart, this.frontier)) this.fix(size);
    await this.idle();
    const extents: Extent[] = [];
    for (const [s, e] of this.dirty.list) {
      for (const [a, b] of this.unsent(s, e)) extents.push({ offset: a, bytes: this.bytesAt(a, b) });
    }
    this.dirty = new Ranges();
    return { state: this.state(), extents };
  }

  /** the parts of [start, end) not in an acknowledged part */
  unsent(start: number, end: number): [number, number][] {
    const sent = new Ranges();
    for (const p of this.done.values()) sent.add(p.offset, p.offset + p.size);
    return sent.gaps(start, end);
  }

  /** The bytes of unsent ranges, as extents (for a journal that stores them again elsewhere). */
  extentsOf(ranges: [number, number][]): Extent[] {
    return ranges.map(([a, b]) => {
      if (this.unsent(a, b).reduce((n, [x, y]) => n + y - x, 0) !== b - a) throw new FurError('internal', `s3://${this.u.bucket}/${this.key}: bytes ${a}-${b} are in a part already sent (a bug in fur)`, { key: this.key });
      return { offset: a, bytes: this.bytesAt(a, b) };
    });
  }

  /** [start, end) from held parts and the tail (unwritten bytes read as zeros) */
  private bytesAt(start: number, end: number): Uint8Array {
    const out = new Uint8Array(end - start);
    for (const seg of this.segments.values()) {
      const lo = Math.max(start, seg.offset);
      const hi = Math.min(end, seg.offset + seg.size);
      if (hi > lo) out.set(seg.buf.subarray(lo - seg.offset, hi - seg.offset), lo - start);
    }
    const lo = Math.max(start, this.tailStart);
    const hi = Math.min(end, this.frontier);
    if (hi > lo) out.set(this.tail.subarray(lo - this.tailStart, hi - this.tailStart), lo - start);
    return out;
  }

  state(): PartSinkState {
    return {
      parts: [...this.done.values()].sort((a, b) => a.n - b.n),
      held: [...this.segments.values()].map((s) => ({ n: s.n, offset: s.offset, size: s.size })).sort((a, b) => a.n - b.n),
      tailStart: this.tailStart,
      end: this.frontier,
      meta: this.meta.slice(0, this.metaHigh),
    };
  }

  /** Send everything — held parts with their unwritten bytes as zeros — then the front region as part 1, and complete. */
  async complete(): Promise<{ size: number; etag?: string; versionId?: string; parts: number }> {
    if (this.failure !== undefined) throw this.failure;
    if (this.frontier > this.tailStart) this.fix(this.frontier - this.tailStart);
    for (const seg of this.segments.values()) this.send(seg);
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
      return { size, etag: r.ETag, versionId: r.VersionId, parts: parts.length };
    } catch (e) {
      throw s3Error(e, { op: 'complete the upload', bucket: this.u.bucket, key: this.key, endpoint: this.u.endpoint });
    }
  }

  /**
   * Whether the upload still exists, asked by sending the next part empty: the one request every
   * S3 look-alike has and answers with NoSuchUpload for an upload that is gone. The writer sends
   * that part again when it fills, or leaves it out of the completion.
   */
  async exists(): Promise<boolean> {
    const body = new Uint8Array(0);
    const n = Math.min(this.nextPart, MAX_PARTS);
    try {
      await this.u.client.send(new UploadPartCommand({ Bucket: this.u.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: n, Body: body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: sha256b64(body) }));
      return true;
    } catch (e) {
      const f = s3Error(e, { op: 'check the pending upload', bucket: this.u.bucket, key: this.key, endpoint: this.u.endpoint });
      if (remoteFields(f).code === 'NoSuchUpload') return false;
      throw f;
    }
  }

  async abort(): Promise<void> {
    this.closed = true;
    this.failure ??= new FurError('upload-aborted', `s3://${this.u.bucket}/${this.key}: the upload was abandoned`, { key: this.key });
    await abortUpload(this.u, this.key, this.uploadId);
  }

  // ---- RandomAccess: the writer reads back the front region (reopen) and, rarely, fresh data ----

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = offset + length;
    if (end <= this.metaEnd) return this.meta.slice(offset, end);
    if (offset >= this.metaEnd && this.unsent(offset, end).reduce((n, [a, b]) => n + b - a, 0) === length) return this.bytesAt(offset, end);
    throw new FurError('not-readable', `s3://${this.u.bucket}/${this.key}: bytes ${offset}-${end} are in parts already uploaded, which S3 cannot read before the upload completes`, { key: this.key, offset, length });
  }

  async size(): Promise<number> { return this.frontier; }

  /** Data reaches S3 as parts fill and at checkpoints; a barrier only reports a failed part. */
  async flush(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
  }

  async sync(): Promise<void> { await this.flush(); }

  async close(): Promise<void> { this.closed = true; }
}

/** Abort a multipart upload; one already gone is not an error. */
export async function abortUpload(u: Uploader, key: string, uploadId: string): Promise<void> {
  await u.client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: key, UploadId: uploadId })).catch((e) => {
    if ((e as { name?: string }).name !== 'NoSuchUpload') throw s3Error(e, { op: 'abort the upload', bucket: u.bucket, key, endpoint: u.endpoint });
  });
}
