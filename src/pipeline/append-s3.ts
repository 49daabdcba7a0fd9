/**
 * The `append` method to S3: one HDF5 object, written while capture goes on as one multipart
 * upload (transport/s3-append.ts streams the data as parts 2, 3, …; the consolidated metadata
 * becomes part 1 when the capture ends and the upload completes).
 *
 * Until then nothing is visible under the object's name, so fur keeps beside it, under
 * `<key>.fur/`, what it needs to continue after a crash — the destination stays the journal:
 *   state        the commit record, rewritten after every batch: upload id, parts (number, offset,
 *                size, ETag, SHA-256), the metadata region, the rows of each dataset not yet in a
 *                whole chunk, and the names of the objects below
 *   spill-…      data written but in no part yet (S3 parts are ≥ 5 MiB, and a part waits until
 *                every byte of it is written); which spills stay: s3-spills.ts
 *   ledger-…     which source files (and frame hashes) each commit added, and up to which part
 *   progress.json  for people: frames committed so far
 * A batch is committed — and its sources may be deleted — once its parts, spills, ledger and
 * the state are stored. A restarted run reads the state, checks the parts with ListParts,
 * rebuilds the writer from the metadata region, the spills and the pending rows, and continues
 * the same upload; parts a crashed run sent after its last commit are overwritten or left out of
 * the completion. A server without a usable ListParts (s3rver, fauxqs) is taken at fur's record,
 * once an empty upload of the next part has shown the upload still exists. An upload that is
 * gone while the record still holds every committed byte (no part was sent) is started again
 * from the record. When the object is complete, `<key>.fur/` is deleted (every version of it, in
 * a versioned bucket), and what cannot be deleted is reported.
 */
import { CreateMultipartUploadCommand, DeleteObjectCommand, DeleteObjectsCommand, GetBucketVersioningCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FurError, isFurError, remoteFields } from '../errors.js';
import { Allocator } from '../hdf5/allocator.js';
import { H5File, type Dataset } from '../hdf5/index.js';
import { SUPERBLOCK_SIZE } from '../hdf5/superblock.js';
import { buildReferences } from '../index/kerchunk.js';
import { fileUrl, putSidecar } from '../index/sidecar.js';
import type { Destination } from '../transport/destination.js';
import { S3Destination } from '../transport/s3.js';
import { abortUpload, S3PartSink, type Extent, type HeldPart, type PartRecord } from '../transport/s3-append.js';
import { MiB } from '../transport/s3-upload.js';
import { groupExtents, planSpills, type Spill } from './s3-spills.js';
import { s3Error } from '../transport/s3-errors.js';
import { FUR_VERSION } from '../version.js';
import type { Batch } from './batch.js';
import { appendBlocks, checkFrameDatasets, createFrameDatasets, datasetsOf, framesPath, mapDatasets, openFrameDatasets, readCommitted, type FrameDatasets, type FrameLayout } from './layout.js';
import type { PipelineOptions } from './options.js';
import type { CollectingTarget, CommitResult } from './target.js';

/**
 * The HDF5 metadata region, sent last as part 1 (S3PartSink's front region): every header and
 * chunk index lies in the object's first part. At least S3's smallest part, and room for a very
 * large index.
 */
export const META_END = 5 * MiB;

const STATE_VERSION = 1;
/** ledgers are merged into one when a run has written this many */
const LEDGER_MERGE = 32;
/** how far the server's clock may be from ours when matching an upload to its recorded intent */
const CLOCK_SLACK_MS = 15 * 60_000;

interface State {
  fur: 's3-append-state';
  version: number;
  key: string;
  /** null: an upload was about to be created (the intent), none recorded yet */
  uploadId: string | null;
  created: string;
  seq: number;
  metaEnd: number;
  /** the allocator's cursor in the metadata region */
  metaCursor: number;
  /** base64 of the metadata region in use */
  meta: string;
  /** parts sent and acknowledged: number, file offset, size, ETag, SHA-256 */
  parts: PartRecord[];
  /** parts with fixed bounds still waiting for some of their bytes */
  held: HeldPart[];
  /** where the bytes not yet assigned to a part begin */
  tailStart: number;
  /** the file's physical end */
  end: number;
  /** in order: the written bytes that are in no part yet */
  spills: Spill[];
  /** dataset path → base64 of its rows not yet in a whole chunk */
  tails: Record<string, string>;
  ledgers: string[];
  layout: FrameLayout | null;
  dataset: string;
  frames: number;
  files: number;
  bytes: number;
}

type PartListing =
  | { kind: 'listed'; parts: Map<number, { etag: string; size: number }> }
  | { kind: 'gone' }
  /** no usable answer: the upload may or may not be there */
  | { kind: 'unusable'; why: string };

interface LedgerEntry { name: string; frames: number; hashes: string }
/** What one commit added: its frames, the highest part number sent by then, and the parts still waiting for bytes. */
interface Ledger { fromFrame: number; toFrame: number; lastPart: number; held: number[]; files: LedgerEntry[] }

/**
 * Rows a dataset holds beyond its last whole chunk: what a resumed writer must be given again.
 * Keeps the appended arrays themselves (the writer does not change them either) and joins them
 * only when a record is written.
 */
class Tail {
  private pieces: Uint8Array[] = [];
  private held = 0;
  private total: number;
  constructor(readonly chunkRows: number, readonly rowBytes: number, rows: number) { this.total = rows; }
  add(data: Uint8Array, rows: number): void {
    this.total += rows;
    const keep = (this.total % this.chunkRows) * this.rowBytes;
    this.pieces.push(data);
    this.held += data.length;
    // drop what lies before the last `keep` bytes
    while (this.pieces.length && this.held - this.pieces[0]!.length >= keep) this.held -= this.pieces.shift()!.length;
    if (this.held > keep) {
      this.pieces[0] = this.pieces[0]!.subarray(this.held - keep);
      this.held = keep;
    }
  }
  get bytes(): Uint8Array {
    if (this.pieces.length === 1) return this.pieces[0]!;
    const out = new Uint8Array(this.held);
    let at = 0;
    for (const p of this.pieces) { out.set(p, at); at += p.length; }
    return out;
  }
}

export class S3AppendTarget implements CollectingTarget {
  readonly committed = new Map<string, number>();
  readonly hashes = new Map<string, Uint8Array[]>();
  private file?: H5File;
  private sink?: S3PartSink;
  private ds?: FrameDatasets;
  private tails = new Map<string, Tail>();
  private state?: State;
  /** the object exists and is complete: nothing can be added */
  private finished = false;
  private readonly key: string;
  /** the SHA-256 of each frame of the batch being committed, as appended to frame_sha256 */
  private batchHashes: Uint8Array = new Uint8Array(0);
  /** the progress record being written (informative: not waited for by the commit) */
  private progressWrite: Promise<void> = Promise.resolve();

  private constructor(private readonly dest: S3Destination, private readonly path: string, private readonly o: PipelineOptions, private readonly warn: (m: string) => void) {
    this.key = dest.key(path);
  }

  static async open(dest: Destination, path: string, o: PipelineOptions, warn: (m: string) => void = () => {}): Promise<S3AppendTarget> {
    if (!(dest instanceof S3Destination)) throw new FurError('method-unsupported', `${dest.url}: not an S3 destination`, { url: dest.url });
    const t = new S3AppendTarget(dest, path, o, warn);
    if (t.key === '' || (await dest.stat(path))?.isDirectory) {
      throw new FurError('not-a-file', `s3://${dest.bucket}/${t.key} is a prefix with objects under it; for --method append the URL names the HDF5 object`, { key: t.key });
    }
    await t.load();
    return t;
  }

  private get where(): string { return `s3://${this.dest.bucket}/${this.key}`; }
  private side(name: string): string { return `${this.key}.fur/${name}`; }
  private ctx(op: string, key = this.key) { return { op, bucket: this.dest.bucket, key, endpoint: this.dest.endpoint }; }

  // ---- side objects ----

  private async getSide(name: string): Promise<Buffer | undefined> {
    try {
      const r = await this.dest.client.send(new GetObjectCommand({ Bucket: this.dest.bucket, Key: this.side(name) }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      const f = s3Error(e, this.ctx('read the upload record', this.side(name)));
      if (f.tag === 'not-found' && remoteFields(f).code !== 'NoSuchBucket') return undefined;
      throw f;
    }
  }

  private async putSide(name: string, body: Uint8Array | string, type = 'application/octet-stream'): Promise<void> {
    await this.dest.client.send(new PutObjectCommand({ Bucket: this.dest.bucket, Key: this.side(name), Body: body, ContentType: type }))
      .catch((e) => { throw s3Error(e, this.ctx('record the upload', this.side(name))); });
  }

  private async putState(s: State): Promise<void> {
    await this.putSide('state', gzipSync(JSON.stringify(s)));
  }

  private async putProgress(s: State): Promise<void> {
    const progress = {
      fur: 'upload in progress', object: this.where, frames: s.frames, files: s.files, bytes: s.bytes,
      parts: s.parts.length, uploadId: s.uploadId, updated: new Date().toISOString(),
      note: 'the object appears under its name when the capture ends; fur resumes this upload if restarted',
    };
    // only informative: a failure here must not fail a commit that is already durable
    await this.putSide('progress.json', JSON.stringify(progress, null, 1) + '\n', 'application/json').catch((e) => this.warn(`progress record not updated: ${(e as Error).message}`));
  }

  /**
   * Delete everything under `<key>.fur/` — every version of it where the bucket keeps versions —
   * and say in one line what stays. The version listing is checked against the plain one: a
   * store may not offer it, or answer it with a plain listing (fauxqs), which names no versions.
   */
  private async cleanup(): Promise<void> {
    const prefix = `${this.key}.fur/`;
    const current = await this.listKeys(prefix);
    const versions: { Key: string; VersionId?: string }[] = [];
    let versionsKnown: boolean;
    try {
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      do {
        const r = await this.dest.client.send(new ListObjectVersionsCommand({ Bucket: this.dest.bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
        for (const v of [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])]) versions.push({ Key: v.Key!, VersionId: v.VersionId === 'null' ? undefined : v.VersionId });
        keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
        versionMarker = r.IsTruncated ? r.NextVersionIdMarker : undefined;
      } while (keyMarker);
      versionsKnown = current.every((k) => versions.some((v) => v.Key === k));
    } catch {
      versionsKnown = false;
    }
    // without a version listing, the current objects by name
    const objects: { Key: string; VersionId?: string }[] = versionsKnown ? versions : current.map((Key) => ({ Key }));
    for (let i = 0; i < objects.length; i += 1000) {
      const batch = objects.slice(i, i + 1000);
      try {
        const r = await this.dest.client.send(new DeleteObjectsCommand({ Bucket: this.dest.bucket, Delete: { Objects: batch, Quiet: true } }));
        if (r.Errors?.length) throw new Error('some not deleted');
      } catch {
        for (const o of batch) await this.dest.client.send(new DeleteObjectCommand({ Bucket: this.dest.bucket, Key: o.Key, VersionId: o.VersionId })).catch(() => undefined);
      }
    }
    const left = await this.listKeys(prefix);
    if (left.length) {
      this.warn(`${this.where}: ${left.length} object${left.length > 1 ? 's' : ''} of fur's upload record could not be removed (${left.slice(0, 3).join(', ')}${left.length > 3 ? ', …' : ''}); the object is complete without ${left.length > 1 ? 'them' : 'it'}: delete ${prefix} with the server's own tools`);
    } else if (!versionsKnown && await this.keepsVersions()) {
      this.warn(`${this.where}: the server does not list object versions, so older versions of ${prefix} may remain in this versioned bucket; the object is complete without them`);
    }
  }

  private async listKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.dest.client.send(new ListObjectsV2Command({ Bucket: this.dest.bucket, Prefix: prefix, ContinuationToken: token }))
        .catch((e) => { throw s3Error(e, this.ctx('list the upload record', prefix)); });
      for (const c of r.Contents ?? []) out.push(c.Key!);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async keepsVersions(): Promise<boolean> {
    const r = await this.dest.client.send(new GetBucketVersioningCommand({ Bucket: this.dest.bucket })).catch(() => undefined);
    return r?.Status === 'Enabled' || r?.Status === 'Suspended';
  }

  // ---- open: fresh, resumed, or finished ----

  private async load(): Promise<void> {
    const raw = await this.getSide('state');
    const exists = await this.objectExists();
    if (!raw) {
      if (exists) return this.openFinished();
      return;
    }
    let s: State;
    try {
      s = JSON.parse(gunzipSync(raw).toString('utf8')) as State;
      if (s.fur !== 's3-append-state' || s.version !== STATE_VERSION || s.key !== this.key) throw new Error('not a state record of this object');
    } catch (e) {
      throw new FurError('bad-upload-record', `${this.where}: the upload record ${this.side('state')} does not parse (${(e as Error).message}); move ${this.key}.fur/ away to start over`, { key: this.key }, { cause: e });
    }
    if (s.uploadId === null) {
      // the last run died between recording its intent and recording the upload it created: no
      // frame was committed, the record holds nothing
      await this.abortUnrecorded(s);
      await this.cleanup();
      if (exists) return this.openFinished();
      return;
    }
    const listed = await this.listParts(s.uploadId);
    if (listed.kind === 'listed') {
      for (const p of s.parts) {
        const got = listed.parts.get(p.n);
        if (!got || got.etag !== p.etag || got.size !== p.size) {
          throw new FurError('upload-mismatch', `${this.where}: part ${p.n} of upload ${s.uploadId} is not the one fur recorded (${got ? `ETag ${got.etag}, ${got.size} bytes` : 'missing'}); move ${this.key}.fur/ away and abort that upload to start over`, { key: this.key, part: p.n });
        }
      }
      return this.resume(s);
    }
    if (exists) {
      // completed before the record was cleaned up
      await this.cleanup();
      return this.openFinished();
    }
    if (listed.kind === 'unusable') {
      // the record is trusted as it stands; whether the upload itself is still there can be asked
      await this.resume(s);
      if (await this.sink!.exists()) {
        this.warn(`${this.where}: the server does not list the parts of a pending upload (ListParts: ${listed.why}); resuming from fur's own record of them in ${this.side('state')}`);
        return;
      }
      this.reset();
    }
    if (s.parts.length) {
      throw new FurError('upload-lost',
        `${this.where}: the pending upload ${s.uploadId} recorded in ${this.side('state')} is gone (aborted, or removed by a lifecycle rule), and with it the ${s.parts.length} part${s.parts.length > 1 ? 's' : ''} holding the first frames (their sources were kept unless --delete-source was given); keep ${this.key}.fur/ — it holds the frames of the last commits — and choose a new object name to continue`,
        { key: this.key, uploadId: s.uploadId, frames: s.frames });
    }
    // every committed byte is in the record: nothing was lost, it is sent again
    const old = s.uploadId;
    s.uploadId = await this.createUpload();
    await this.putState(s);
    this.warn(`${this.where}: the pending upload ${old} is gone; every committed frame is in fur's own record (${this.key}.fur/): sending them again in a new upload, ${s.uploadId}`);
    await this.resume(s);
  }

  /** Forget a resumed writer (its upload turned out to be gone). */
  private reset(): void {
    this.sink = undefined;
    this.file = undefined;
    this.ds = undefined;
    this.state = undefined;
    this.tails.clear();
    this.committed.clear();
    this.hashes.clear();
  }

  private async objectExists(): Promise<boolean> {
    try {
      await this.dest.client.send(new HeadObjectCommand({ Bucket: this.dest.bucket, Key: this.key }));
      return true;
    } catch (e) {
      const f = s3Error(e, this.ctx('stat'));
      if (f.tag === 'not-found' && remoteFields(f).code !== 'NoSuchBucket') return false;
      throw f;
    }
  }

  /** A finished object: learn what it holds (a rerun then skips those sources); nothing can be added. */
  private async openFinished(): Promise<void> {
    this.finished = true;
    let file: H5File;
    try {
      file = await H5File.open(await this.dest.openRead(this.path), { readOnly: true });
    } catch (e) {
      if (!isFurError(e, 'hdf5-format') && !(e instanceof RangeError)) throw e;
      throw new FurError('not-a-fur-file', `${this.where}: exists and is not a file fur wrote (${(e as Error).message}); choose a new object name`, { key: this.key }, { cause: e });
    }
    try {
      const frames = file.has(framesPath(file, this.o.dataset)) ? file.dataset(framesPath(file, this.o.dataset)).shape[0] : 0;
      await readCommitted(file, this.o.dataset, frames, this.committed, this.hashes);
    } finally {
      await file.close().catch(() => undefined);
    }
  }

  /**
   * The parts of the pending upload. Only NoSuchUpload says it is gone: s3rver answers
   * MethodNotAllowed, fauxqs NoSuchKey (it takes the request for a GetObject), Ceph RGW NoSuchKey
   * for an upload it does not know — those leave the question open.
   */
  private async listParts(uploadId: string): Promise<PartListing> {
    const parts = new Map<number, { etag: string; size: number }>();
    let marker: string | undefined;
    try {
      do {
        const r = await this.dest.client.send(new ListPartsCommand({ Bucket: this.dest.bucket, Key: this.key, UploadId: uploadId, PartNumberMarker: marker }));
        // a store that took the request for another one answers with something else
        if (r.UploadId !== uploadId) return { kind: 'unusable', why: 'an answer that is not a part listing' };
        for (const p of r.Parts ?? []) parts.set(p.PartNumber!, { etag: p.ETag!, size: p.Size! });
        marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (e) {
      const f = s3Error(e, this.ctx('list the parts of the pending upload'));
      if (remoteFields(f).code === 'NoSuchUpload') return { kind: 'gone' };
      if (notOffered(f)) return { kind: 'unusable', why: String(remoteFields(f).code ?? remoteFields(f).status ?? f.message) };
      throw f;
    }
    return { kind: 'listed', parts };
  }

  /** Uploads of this very key started around the recorded intent: the one the last run created and never recorded. */
  private async abortUnrecorded(s: State): Promise<void> {
    const at = Date.parse(s.created);
    const unlisted = (why: string) => this.warn(`${this.where}: an upload an earlier run of fur started at ${s.created} and never recorded may still be pending; the server does not list pending uploads (ListMultipartUploads: ${why}) — remove it with the server's own tools or a lifecycle rule`);
    let r;
    try {
      r = await this.dest.client.send(new ListMultipartUploadsCommand({ Bucket: this.dest.bucket, Prefix: this.key }));
    } catch (e) {
      const f = s3Error(e, this.ctx('list pending uploads'));
      if (!notOffered(f)) throw f;
      return unlisted(String(remoteFields(f).code ?? remoteFields(f).status ?? f.message));
    }
    // fauxqs answers with an object listing
    if (r.Bucket === undefined) return unlisted('an answer that is not an upload listing');
    for (const u of r.Uploads ?? []) {
      if (u.Key !== this.key || !u.Initiated || Math.abs(u.Initiated.getTime() - at) > CLOCK_SLACK_MS) continue;
      try {
        await this.abortUpload(u.UploadId!);
        this.warn(`${this.where}: aborted upload ${u.UploadId}, which an earlier run of fur started but never recorded`);
      } catch (e) {
        this.warn(`${this.where}: upload ${u.UploadId}, which an earlier run of fur started but never recorded, could not be aborted (${(e as Error).message}); it holds no frame`);
      }
    }
  }

  private async abortUpload(uploadId: string): Promise<void> {
    await abortUpload(this.dest.uploader, this.key, uploadId);
  }

  /** Rebuild the writer where the last commit left it. */
  private async resume(s: State): Promise<void> {
    const extents: Extent[] = [];
    for (const sp of s.spills) {
      const body = await this.getSide(sp.key.slice(`${this.key}.fur/`.length));
      if (!body) {
        throw new FurError('bad-upload-record', `${this.where}: ${sp.key}, needed to resume, is missing; move ${this.key}.fur/ away and abort upload ${s.uploadId} to start over`, { key: this.key });
      }
      extents.push(...decodeExtents(body));
    }
    const meta = Buffer.from(s.meta, 'base64');
    this.sink = new S3PartSink(this.dest.uploader, this.key, s.uploadId!, {
      metaEnd: s.metaEnd,
      resume: { state: { parts: s.parts, held: s.held, tailStart: s.tailStart, end: s.end, meta }, extents },
    });
    const file = await H5File.open(this.sink, { eofHeadroom: 0, metaReserve: s.metaEnd - SUPERBLOCK_SIZE });
    continueMetaRegion(file, s.end, s.metaCursor, s.metaEnd);
    this.file = file;
    this.state = s;
    if (s.layout) {
      const ds = openFrameDatasets(file, s.layout, this.o, this.where);
      for (const d of datasetsOf(ds)) {
        const path = d.path;
        const tail = new Tail(d.chunk![0], d.rowBytes, d.shape[0]);
        const bytes = Buffer.from(s.tails[path] ?? '', 'base64');
        if (bytes.length) await d.append(new Uint8Array(bytes), bytes.length / d.rowBytes);
        tail.add(new Uint8Array(bytes), bytes.length / d.rowBytes);
        this.tails.set(path, tail);
      }
      this.ds = ds;
    }
    for (const name of s.ledgers) {
      const body = await this.getSide(name.slice(`${this.key}.fur/`.length));
      if (!body) throw new FurError('bad-upload-record', `${this.where}: ${name}, needed to resume, is missing; move ${this.key}.fur/ away and abort upload ${s.uploadId} to start over`, { key: this.key });
      for (const l of (JSON.parse(gunzipSync(body).toString('utf8')) as Ledger[])) this.learn(l);
    }
  }

  private learn(l: Ledger): void {
    for (const f of l.files) {
      this.committed.set(f.name, (this.committed.get(f.name) ?? 0) + f.frames);
      const h = Buffer.from(f.hashes, 'base64');
      const list = this.hashes.get(f.name) ?? [];
      for (let i = 0; i < f.frames; i++) list.push(new Uint8Array(h.subarray(i * 32, i * 32 + 32)));
      this.hashes.set(f.name, list);
    }
  }

  // ---- commit ----

  async commit(batch: Batch): Promise<CommitResult> {
    if (this.finished) {
      throw new FurError('object-complete', `${this.where} is complete: an S3 object cannot grow once its upload is finished; upload the new frames under a new name`, { key: this.key });
    }
    const first = batch.items[0]!.block;
    if (first.encoding) {
      // its tails (what a resumed upload rewrites) are kept row by row, from frames' bytes
      throw new FurError('method-unsupported', `${this.where}: frames that arrive filtered (${first.encoding}) are not appended to S3 objects; use --method batches`, { url: this.where, method: 'append' });
    }
    const layout: FrameLayout = { dtype: first.dtype, shape: first.shape };
    if (!this.file) await this.start();
    if (!this.ds) {
      this.ds = createFrameDatasets(this.file!, layout, this.o);
      for (const d of datasetsOf(this.ds)) this.tails.set(d.path, new Tail(d.chunk![0], d.rowBytes, 0));
      this.state!.layout = layout;
    } else if (this.state!.layout) {
      // same check as a reopened append file: the frames must fit the datasets
      checkFrameDatasets(this.file!, layout, this.o, this.where);
    }
    const hashes: Uint8Array[] = [];
    const bytes = await appendBlocks(recording(this.ds, this.tails, (h) => hashes.push(h)), batch.items.map((i) => i.block));
    this.batchHashes = concat(hashes);
    // whole chunks only: a partial chunk would have to change after its part is sent
    await this.file!.commit({ complete: true, publishLast: this.ds.data });
    this.checkMetaRegion();
    await this.checkpoint(batch, bytes);
    return { frames: this.state!.frames, bytes };
  }

  /** Create the upload, recorded before and after, so no upload of fur's is ever left unknown. */
  private async start(): Promise<void> {
    const s: State = {
      fur: 's3-append-state', version: STATE_VERSION, key: this.key, uploadId: null, created: new Date().toISOString(), seq: 0,
      metaEnd: META_END, metaCursor: 0, meta: '', parts: [], held: [], tailStart: META_END, end: META_END, spills: [], tails: {}, ledgers: [],
      layout: null, dataset: this.o.dataset, frames: 0, files: 0, bytes: 0,
    };
    await this.putState(s);
    let uploadId: string;
    try {
      uploadId = await this.createUpload();
    } catch (e) {
      await this.cleanup().catch(() => undefined);
      throw e;
    }
    s.uploadId = uploadId;
    try {
      await this.putState(s);
    } catch (e) {
      await this.abortUpload(uploadId).catch(() => undefined);
      throw e;
    }
    this.state = s;
    this.sink = new S3PartSink(this.dest.uploader, this.key, uploadId, { metaEnd: META_END });
    const file = await H5File.create(this.sink, { metaReserve: META_END - SUPERBLOCK_SIZE, eofHeadroom: 0 });
    file.setAttr('/', 'fur_version', FUR_VERSION);
    file.setAttr('/', 'fur_method', 'append');
    this.file = file;
  }

  private async createUpload(): Promise<string> {
    try {
      const r = await this.dest.client.send(new CreateMultipartUploadCommand({
        Bucket: this.dest.bucket, Key: this.key, ChecksumAlgorithm: 'SHA256', ContentType: 'application/x-hdf5',
        Metadata: { 'fur-method': 'append' },
      }));
      return r.UploadId!;
    } catch (e) {
      throw s3Error(e, this.ctx('start the upload'));
    }
  }

  /** When the writer outgrows the metadata region it opens a new one among the data, which parts cannot take: stop cleanly first. */
  private checkMetaRegion(): void {
    const region = metaRegion(this.file!);
    if (region.end !== this.state!.metaEnd) {
      throw new FurError('metadata-full', `${this.where}: the metadata region (${this.state!.metaEnd} bytes, part 1) is full; the frames so far are safe — end this capture and continue under a new object name`, { key: this.key });
    }
  }

  private async checkpoint(batch: Batch, bytes: number): Promise<void> {
    const s = this.state!;
    const sink = this.sink!;
    const { state: done, extents } = await sink.checkpoint();
    const seq = s.seq + 1;
    // the bytes written since the last record that no part holds yet, and the live bytes of
    // spills mostly dead (s3-spills.ts): one spill object per waiting part, one for the tail
    const plan = planSpills(s.spills, extents.map(rangeOf), done.parts.map((p) => [p.offset, p.offset + p.size]), this.deadLimit());
    const spills = [...plan.keep];
    const stored: Promise<void>[] = [];
    for (const g of groupExtents([...extents, ...sink.extentsOf(plan.again)], done.held, done.tailStart)) {
      const name = `spill-${String(seq).padStart(9, '0')}${g.part === undefined ? '' : `-part${g.part}`}`;
      // stored beside the ledger; both before the state that names them
      const put = this.putSide(name, encodeExtents(g.extents));
      put.catch(() => undefined);
      stored.push(put);
      spills.push({ key: this.side(name), ranges: g.extents.map(rangeOf) });
    }
    const end = done.end;
    const framesBefore = s.frames;
    const frames = framesBefore + batch.frames;
    const ledger: Ledger = {
      fromFrame: framesBefore, toFrame: frames, lastPart: done.parts.length ? done.parts[done.parts.length - 1]!.n : 1, held: done.held.map((h) => h.n),
      files: ledgerFiles(batch, this.batchHashes),
    };
    let ledgers = [...s.ledgers];
    let merged: string[] = [];
    const ledgerKey = this.side(`ledger-${String(seq).padStart(9, '0')}`);
    if (ledgers.length + 1 > LEDGER_MERGE) {
      // one object for everything so far, so a resume reads a few ledgers, not thousands
      const all: Ledger[] = [];
      for (const k of ledgers) all.push(...(JSON.parse(gunzipSync((await this.getSide(k.slice(`${this.key}.fur/`.length)))!).toString('utf8')) as Ledger[]));
      all.push(ledger);
      await this.putSide(ledgerKey.slice(`${this.key}.fur/`.length), gzipSync(JSON.stringify(all)));
      merged = ledgers;
      ledgers = [ledgerKey];
    } else {
      await this.putSide(ledgerKey.slice(`${this.key}.fur/`.length), gzipSync(JSON.stringify([ledger])));
      ledgers.push(ledgerKey);
    }
    await Promise.all(stored);
    const next: State = {
      ...s, seq, metaCursor: metaRegion(this.file!).cursor, meta: Buffer.from(done.meta).toString('base64'),
      parts: done.parts, held: done.held, tailStart: done.tailStart, end, spills, ledgers,
      tails: Object.fromEntries([...this.tails].map(([p, t]) => [p, Buffer.from(t.bytes).toString('base64')])),
      frames, files: s.files + batch.items.length, bytes: s.bytes + bytes,
    };
    // a resumed writer starts allocating at the recorded end: it must be where the writer is now
    const allocated = allocatorOf(this.file!).end;
    if (allocated !== end) throw new FurError('internal', `${this.where}: the file's data ends at ${end} but the writer has allocated up to ${allocated} (a bug in fur)`, { key: this.key });
    await this.putState(next);
    // the commit point has passed: the batch is durable
    this.state = next;
    this.learn(ledger);
    await this.progressWrite;
    this.progressWrite = this.putProgress(next);
    for (const old of [...plan.drop.map((d) => d.key), ...merged]) {
      await this.dest.client.send(new DeleteObjectCommand({ Bucket: this.dest.bucket, Key: old })).catch(() => undefined);
    }
  }

  /** Dead bytes the spills may keep: one chunk of the frames dataset (the space bound allows two). */
  private deadLimit(): number {
    const d = this.ds!.data;
    return d.chunk![0]! * d.rowBytes;
  }

  // ---- ending ----

  /** The capture ended: write the final metadata, complete the upload, add the chunk index, clean up. */
  async close(): Promise<void> {
    if (this.finished || !this.file) return;
    const s = this.state!;
    if (s.frames === 0) {
      // nothing committed: nothing to publish
      await this.abortUpload(s.uploadId!).catch((e) => this.warn(`${this.where}: the upload ${s.uploadId}, which holds no frame, could not be aborted (${(e as Error).message})`));
      await this.cleanup();
      await this.sink?.close();
      return;
    }
    await this.file.close();
    const done = await this.sink!.complete();
    await this.progressWrite;
    this.finished = true;
    // the chunk index reads only the metadata region, still in memory
    const refs = await buildReferences(this.file, fileUrl(this.dest, this.path));
    await putSidecar(this.dest, this.path, refs).catch((e) => this.warn(`chunk index not written beside ${this.where}: ${(e as Error).message}`));
    await this.cleanup().catch((e) => this.warn(`could not remove the upload record ${this.key}.fur/: ${(e as Error).message}`));
    this.summary = { bytes: done.size, parts: done.parts, metaUsed: this.sink!.metaUsed };
  }

  /** after close: the object's size, its part count, and the bytes of part 1 that hold the structure */
  summary?: { bytes: number; parts: number; metaUsed: number };

  /** The run failed: keep the upload pending, as recorded at the last commit, for the next run. */
  async suspend(): Promise<void> {
    await this.sink?.close();
    this.file = undefined;
  }
}

/** The datasets, each noting the rows appended to it (heap ids for variable-length ones) in its Tail. */
function recording(ds: FrameDatasets, tails: Map<string, Tail>, onHashes: (rows: Uint8Array) => void): FrameDatasets {
  const wrap = (d: Dataset, seen?: (rows: Uint8Array) => void): Dataset => {
    const tail = tails.get(d.path)!;
    return new Proxy(d, {
      get(target, prop) {
        if (prop === 'append') {
          return async (data: Uint8Array | ArrayBufferView, rows?: number) => {
            const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
            tail.add(bytes, rows ?? bytes.length / target.rowBytes);
            seen?.(bytes);
            return target.append(bytes, rows);
          };
        }
        if (prop === 'appendVlen') {
          return async (items: (string | Uint8Array)[]) => {
            const ids = target.storeVlen(items);
            tail.add(ids, items.length);
            return target.append(ids, items.length);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return mapDatasets(ds, (d) => wrap(d, d === ds.sha256 ? onHashes : undefined));
}

// H5File keeps its allocator private. Appending to S3 needs two things it does not offer: to see
// whether the metadata region overflowed, and, on resume, to go on filling the first region
// (part 1) instead of opening a new one after the data. Both go through this guarded access;
// a `metaRegion` option on H5File.open would make it unnecessary.
interface AllocatorView { end: number; metaCursor: number; metaEnd: number; metaRegionSize: number }

function allocatorOf(file: H5File): AllocatorView {
  const a = (file as unknown as { alloc?: unknown }).alloc;
  if (!(a instanceof Allocator) || typeof (a as unknown as AllocatorView).metaCursor !== 'number' || typeof (a as unknown as AllocatorView).metaEnd !== 'number') {
    throw new FurError('internal', 'H5File no longer exposes its allocator as append-s3.ts expects; update continueMetaRegion/metaRegion', {});
  }
  return a as unknown as AllocatorView;
}

function metaRegion(file: H5File): { cursor: number; end: number } {
  const a = allocatorOf(file);
  return { cursor: a.metaCursor, end: a.metaEnd };
}

function continueMetaRegion(file: H5File, eof: number, cursor: number, metaEnd: number): void {
  allocatorOf(file);
  (file as unknown as { alloc: Allocator }).alloc = new Allocator(eof, cursor, metaEnd, metaEnd - SUPERBLOCK_SIZE);
}

/** Extents as one object: [offset u64][length u32][bytes]… */
function encodeExtents(xs: Extent[]): Uint8Array {
  const out = Buffer.alloc(xs.reduce((n, x) => n + 12 + x.bytes.length, 0));
  let at = 0;
  for (const x of xs) {
    out.writeBigUInt64LE(BigInt(x.offset), at);
    out.writeUInt32LE(x.bytes.length, at + 8);
    out.set(x.bytes, at + 12);
    at += 12 + x.bytes.length;
  }
  return out;
}

function decodeExtents(b: Buffer): Extent[] {
  const out: Extent[] = [];
  for (let at = 0; at + 12 <= b.length;) {
    const offset = Number(b.readBigUInt64LE(at));
    const n = b.readUInt32LE(at + 8);
    out.push({ offset, bytes: new Uint8Array(b.subarray(at + 12, at + 12 + n)) });
    at += 12 + n;
  }
  return out;
}

const rangeOf = (x: Extent): [number, number] => [x.offset, x.offset + x.bytes.length];

function concat(xs: Uint8Array[]): Uint8Array {
  if (xs.length === 1) return xs[0]!;
  const out = new Uint8Array(xs.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of xs) { out.set(x, at); at += x.length; }
  return out;
}

/** Each file of the batch with the hashes of its frames (the batch's frame_sha256 rows, in order). */
function ledgerFiles(batch: Batch, hashes: Uint8Array): LedgerEntry[] {
  let row = 0;
  return batch.items.map(({ block }) => {
    const h = hashes.subarray(row * 32, (row + block.count) * 32);
    row += block.count;
    return { name: block.name, frames: block.count, hashes: Buffer.from(h).toString('base64') };
  });
}

/** A refusal that means the server does not offer the request (or its answer), not that something failed. */
function notOffered(f: FurError): boolean {
  return f.tag === 'remote-refused' || f.tag === 'permission-denied' || (f.tag === 'not-found' && remoteFields(f).code !== 'NoSuchBucket');
}
