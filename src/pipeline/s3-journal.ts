/**
 * The record of an S3 append that is still a multipart upload. Until the upload completes nothing
 * is visible under the object's name, so fur keeps beside it, under `<key>.fur/`, what it needs to
 * continue after a crash — the destination stays the journal:
 *   state        the commit record, rewritten after every batch: upload id, parts (number, offset,
 *                size, ETag, SHA-256), the metadata region, the rows of each dataset not yet in a
 *                whole chunk, and the names of the objects below
 *   spill-…      data written but in no part yet (S3 parts are ≥ 5 MiB, and a part waits until
 *                every byte of it is written); which spills stay: s3-spills.ts
 *   ledger-…     which source files (and frame hashes) each commit added, and up to which part
 *   progress.json  for people: frames committed so far
 * A batch is committed — and its sources may be deleted — once its parts, spills, ledger and
 * the state are stored. Opening reads the state and checks the parts with ListParts: the writer
 * (s3-hdf5-target.ts) then continues the same upload; parts a crashed run sent after its last
 * commit are overwritten or left out of the completion. A server without a usable ListParts
 * (s3rver, fauxqs) is taken at fur's record, once the writer has shown the upload still exists.
 * An upload that is gone while the record still holds every committed byte (no part was sent) is
 * started again from the record. When the object is complete, `<key>.fur/` is deleted (every
 * version of it, in a versioned bucket), and what cannot be deleted is reported.
 */
import { CreateMultipartUploadCommand, DeleteObjectCommand, DeleteObjectsCommand, GetBucketVersioningCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { listVersions } from '../transport/s3-versions.js';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FurError, remoteFields } from '../errors.js';
import type { S3Destination } from '../transport/s3.js';
import { abortUpload, type Extent, type HeldPart, type PartRecord, type PartSinkState } from '../transport/s3-append.js';
import { s3Error } from '../transport/s3-errors.js';
import type { FrameLayout } from './layout.js';
import { groupExtents, planSpills, type Spill } from './s3-spills.js';

const STATE_VERSION = 1;
/** ledgers are merged into one when a run has written this many */
const LEDGER_MERGE = 32;
/** how far the server's clock may be from ours when matching an upload to its recorded intent */
const CLOCK_SLACK_MS = 15 * 60_000;

export interface State {
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

export interface LedgerEntry { name: string; frames: number; hashes: string }
/** What one commit added: its frames, the highest part number sent by then, and the parts still waiting for bytes. */
export interface Ledger { fromFrame: number; toFrame: number; lastPart: number; held: number[]; files: LedgerEntry[] }

/** What opening the journal found. */
export type Opened =
  | { kind: 'fresh' }
  /** the object is complete: nothing can be added */
  | { kind: 'finished' }
  /** a pending upload to continue; `unverified`: the server could not list its parts (why) */
  | { kind: 'pending'; state: State; unverified?: string };

/** One commit as the journal stores it. */
export interface Entry {
  /** the sink's checkpoint: its state and the extents written since the last one in no part yet */
  checkpoint: { state: PartSinkState; extents: Extent[] };
  /** the bytes of ranges in no part yet (live bytes of spills stored again) */
  extentsOf(ranges: [number, number][]): Extent[];
  /** dead bytes the spills may keep */
  deadLimit: number;
  metaCursor: number;
  tails: Record<string, string>;
  frames: number;
  bytes: number;
  files: LedgerEntry[];
}

export class S3Journal {
  /** the record as last stored (undefined before the upload is started) */
  state?: State;
  /** the progress record being written (informative: not waited for by the commit) */
  private progressWrite: Promise<void> = Promise.resolve();

  constructor(private readonly dest: S3Destination, readonly key: string, private readonly warn: (m: string) => void) {}

  get where(): string { return `s3://${this.dest.bucket}/${this.key}`; }
  get prefix(): string { return `${this.key}.fur/`; }
  private side(name: string): string { return this.prefix + name; }
  private ctx(op: string, key = this.key) { return { op, bucket: this.dest.bucket, key, endpoint: this.dest.endpoint }; }

  // ---- side objects ----

  /** an object of the record, by its full key */
  private async getSide(key: string): Promise<Buffer | undefined> {
    try {
      const r = await this.dest.client.send(new GetObjectCommand({ Bucket: this.dest.bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      const f = s3Error(e, this.ctx('read the upload record', key));
      if (f.tag === 'not-found' && remoteFields(f).code !== 'NoSuchBucket') return undefined;
      throw f;
    }
  }

  private async needSide(key: string, uploadId: string | null): Promise<Buffer> {
    const body = await this.getSide(key);
    if (!body) throw new FurError('bad-upload-record', `${this.where}: ${key}, needed to resume, is missing; move ${this.prefix} away and abort upload ${uploadId} to start over`, { key: this.key });
    return body;
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

  /** the progress record last started, written */
  async settled(): Promise<void> { await this.progressWrite; }

  /**
   * Delete everything under `<key>.fur/` — every version of it where the bucket keeps versions —
   * and say in one line what stays. The version listing is checked against the plain one: a
   * store may not offer it, or answer it with a plain listing (fauxqs), which names no versions.
   */
  async cleanup(): Promise<void> {
    const prefix = this.prefix;
    const current = await this.listKeys(prefix);
    let versions: { Key: string; VersionId?: string }[] = [];
    let versionsKnown: boolean;
    try {
      versions = (await listVersions(this.dest, prefix)).map((v) => ({ Key: v.key, VersionId: v.versionId }));
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

  // ---- open: fresh, pending, or finished ----

  async open(): Promise<Opened> {
    const raw = await this.getSide(this.side('state'));
    const exists = await this.objectExists();
    if (!raw) return { kind: exists ? 'finished' : 'fresh' };
    let s: State;
    try {
      s = JSON.parse(gunzipSync(raw).toString('utf8')) as State;
      if (s.fur !== 's3-append-state' || s.version !== STATE_VERSION || s.key !== this.key) throw new Error('not a state record of this object');
    } catch (e) {
      throw new FurError('bad-upload-record', `${this.where}: the upload record ${this.side('state')} does not parse (${(e as Error).message}); move ${this.prefix} away to start over`, { key: this.key }, { cause: e });
    }
    if (s.uploadId === null) {
      // the last run died between recording its intent and recording the upload it created: no
      // frame was committed, the record holds nothing
      await this.abortUnrecorded(s);
      await this.cleanup();
      return { kind: exists ? 'finished' : 'fresh' };
    }
    const listed = await this.listParts(s.uploadId);
    if (listed.kind === 'listed') {
      for (const p of s.parts) {
        const got = listed.parts.get(p.n);
        if (!got || got.etag !== p.etag || got.size !== p.size) {
          throw new FurError('upload-mismatch', `${this.where}: part ${p.n} of upload ${s.uploadId} is not the one fur recorded (${got ? `ETag ${got.etag}, ${got.size} bytes` : 'missing'}); move ${this.prefix} away and abort that upload to start over`, { key: this.key, part: p.n });
        }
      }
      this.state = s;
      return { kind: 'pending', state: s };
    }
    if (exists) {
      // completed before the record was cleaned up
      await this.cleanup();
      return { kind: 'finished' };
    }
    if (listed.kind === 'unusable') {
      // the record is trusted as it stands; whether the upload itself is still there the writer asks
      this.state = s;
      return { kind: 'pending', state: s, unverified: listed.why };
    }
    return { kind: 'pending', state: await this.restart(s) };
  }

  /**
   * The pending upload is gone. If it held parts, their frames are lost to it: say so. Otherwise
   * every committed byte is in the record, and a new upload takes them again.
   */
  async restart(s: State): Promise<State> {
    if (s.parts.length) {
      throw new FurError('upload-lost',
        `${this.where}: the pending upload ${s.uploadId} recorded in ${this.side('state')} is gone (aborted, or removed by a lifecycle rule), and with it the ${s.parts.length} part${s.parts.length > 1 ? 's' : ''} holding the first frames (their sources were kept unless --delete-source was given); keep ${this.prefix} — it holds the frames of the last commits — and choose a new object name to continue`,
        { key: this.key, uploadId: s.uploadId ?? undefined, frames: s.frames });
    }
    const old = s.uploadId;
    s.uploadId = await this.createUpload();
    await this.putState(s);
    this.warn(`${this.where}: the pending upload ${old} is gone; every committed frame is in fur's own record (${this.prefix}): sending them again in a new upload, ${s.uploadId}`);
    this.state = s;
    return s;
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
        await abortUpload(this.dest.uploader, this.key, u.UploadId!);
        this.warn(`${this.where}: aborted upload ${u.UploadId}, which an earlier run of fur started but never recorded`);
      } catch (e) {
        this.warn(`${this.where}: upload ${u.UploadId}, which an earlier run of fur started but never recorded, could not be aborted (${(e as Error).message}); it holds no frame`);
      }
    }
  }

  // ---- what a resumed writer reads ----

  /** The extents of the record's spills, in the order they were stored. */
  async spilled(s: State): Promise<Extent[]> {
    const extents: Extent[] = [];
    for (const sp of s.spills) extents.push(...decodeExtents(await this.needSide(sp.key, s.uploadId)));
    return extents;
  }

  /** Every commit's ledger, in order. */
  async ledgers(s: State): Promise<Ledger[]> {
    const out: Ledger[] = [];
    for (const name of s.ledgers) out.push(...(JSON.parse(gunzipSync(await this.needSide(name, s.uploadId)).toString('utf8')) as Ledger[]));
    return out;
  }

  // ---- starting, committing, ending ----

  /** Create the upload, recorded before and after, so no upload of fur's is ever left unknown. */
  async begin(fields: Pick<State, 'metaEnd' | 'dataset'>): Promise<string> {
    const s: State = {
      fur: 's3-append-state', version: STATE_VERSION, key: this.key, uploadId: null, created: new Date().toISOString(), seq: 0,
      metaEnd: fields.metaEnd, metaCursor: 0, meta: '', parts: [], held: [], tailStart: fields.metaEnd, end: fields.metaEnd, spills: [], tails: {}, ledgers: [],
      layout: null, dataset: fields.dataset, frames: 0, files: 0, bytes: 0,
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
      await abortUpload(this.dest.uploader, this.key, uploadId).catch(() => undefined);
      throw e;
    }
    this.state = s;
    return uploadId;
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

  /**
   * Store one commit: its spills and ledger, then the state that names them — the commit point.
   * Returns the commit's ledger.
   */
  async commit(e: Entry, layout: FrameLayout): Promise<Ledger> {
    const s = this.state!;
    const { state: done, extents } = e.checkpoint;
    const seq = s.seq + 1;
    // the bytes written since the last record that no part holds yet, and the live bytes of
    // spills mostly dead (s3-spills.ts): one spill object per waiting part, one for the tail
    const plan = planSpills(s.spills, extents.map(rangeOf), done.parts.map((p) => [p.offset, p.offset + p.size]), e.deadLimit);
    const spills = [...plan.keep];
    const stored: Promise<void>[] = [];
    for (const g of groupExtents([...extents, ...e.extentsOf(plan.again)], done.held, done.tailStart)) {
      const name = `spill-${String(seq).padStart(9, '0')}${g.part === undefined ? '' : `-part${g.part}`}`;
      // stored beside the ledger; both before the state that names them
      const put = this.putSide(name, encodeExtents(g.extents));
      put.catch(() => undefined);
      stored.push(put);
      spills.push({ key: this.side(name), ranges: g.extents.map(rangeOf) });
    }
    const frames = s.frames + e.frames;
    const ledger: Ledger = {
      fromFrame: s.frames, toFrame: frames, lastPart: done.parts.length ? done.parts[done.parts.length - 1]!.n : 1, held: done.held.map((h) => h.n),
      files: e.files,
    };
    let ledgers = [...s.ledgers];
    let merged: string[] = [];
    const ledgerName = `ledger-${String(seq).padStart(9, '0')}`;
    if (ledgers.length + 1 > LEDGER_MERGE) {
      // one object for everything so far, so a resume reads a few ledgers, not thousands
      const all = [...await this.ledgers(s), ledger];
      await this.putSide(ledgerName, gzipSync(JSON.stringify(all)));
      merged = ledgers;
      ledgers = [this.side(ledgerName)];
    } else {
      await this.putSide(ledgerName, gzipSync(JSON.stringify([ledger])));
      ledgers.push(this.side(ledgerName));
    }
    await Promise.all(stored);
    const next: State = {
      ...s, seq, metaCursor: e.metaCursor, meta: Buffer.from(done.meta).toString('base64'),
      parts: done.parts, held: done.held, tailStart: done.tailStart, end: done.end, spills, ledgers, layout,
      tails: e.tails, frames, files: s.files + e.files.length, bytes: s.bytes + e.bytes,
    };
    await this.putState(next);
    // the commit point has passed: the batch is durable
    this.state = next;
    await this.progressWrite;
    this.progressWrite = this.putProgress(next);
    for (const old of [...plan.drop.map((d) => d.key), ...merged]) {
      await this.dest.client.send(new DeleteObjectCommand({ Bucket: this.dest.bucket, Key: old })).catch(() => undefined);
    }
    return ledger;
  }

  /** Nothing was committed: abort the upload and remove the record. */
  async abandon(): Promise<void> {
    const uploadId = this.state?.uploadId;
    if (uploadId) {
      await abortUpload(this.dest.uploader, this.key, uploadId).catch((e) => this.warn(`${this.where}: the upload ${uploadId}, which holds no frame, could not be aborted (${(e as Error).message})`));
    }
    await this.cleanup();
  }
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

/** A refusal that means the server does not offer the request (or its answer), not that something failed. */
function notOffered(f: FurError): boolean {
  return f.tag === 'remote-refused' || f.tag === 'permission-denied' || (f.tag === 'not-found' && remoteFields(f).code !== 'NoSuchBucket');
}
