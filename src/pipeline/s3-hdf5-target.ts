/**
 * The `append` method to S3: one HDF5 file written as one object while capture goes on, through
 * a multipart upload that stays open (transport/s3-append.ts streams the data as parts 2, 3, …;
 * the metadata region, META_END bytes, becomes part 1 when the capture ends and the upload
 * completes). What a crashed run needs to continue is kept by the journal (s3-journal.ts); this
 * module writes the HDF5 file through the sink, commits batches to the journal, and rebuilds the
 * writer from a journal's record: the metadata region, the spills and the rows of each dataset
 * not yet in a whole chunk.
 */
import { FurError, isFurError } from '../errors.js';
import { Allocator } from '../hdf5/allocator.js';
import { H5File, type Dataset } from '../hdf5/index.js';
import { SUPERBLOCK_SIZE } from '../hdf5/superblock.js';
import { buildReferences } from '../index/kerchunk.js';
import { fileUrl, putSidecar } from '../index/sidecar.js';
import type { Destination } from '../transport/destination.js';
import { S3Destination } from '../transport/s3.js';
import { S3PartSink } from '../transport/s3-append.js';
import { MiB } from '../transport/s3-upload.js';
import { FUR_VERSION } from '../version.js';
import type { Batch } from './batch.js';
import { appendBlocks, checkFrameDatasets, createFrameDatasets, datasetsOf, framesPath, mapDatasets, openFrameDatasets, readCommitted, type FrameDatasets, type FrameLayout } from './layout.js';
import type { PipelineOptions } from './options.js';
import { S3Journal, type Ledger, type LedgerEntry, type State } from './s3-journal.js';
import type { CollectingTarget, CommitResult } from './target.js';

/**
 * The HDF5 metadata region, sent last as part 1 (S3PartSink's front region): every header and
 * chunk index lies in the object's first part. At least S3's smallest part, and room for a very
 * large index.
 */
export const META_END = 5 * MiB;

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
  private layout?: FrameLayout;
  private tails = new Map<string, Tail>();
  /** the object exists and is complete: nothing can be added */
  private finished = false;
  private readonly journal: S3Journal;
  /** the SHA-256 of each frame of the batch being committed, as appended to frame_sha256 */
  private batchHashes: Uint8Array = new Uint8Array(0);

  private constructor(private readonly dest: S3Destination, private readonly path: string, private readonly o: PipelineOptions, private readonly warn: (m: string) => void) {
    this.journal = new S3Journal(dest, dest.key(path), warn);
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

  private get key(): string { return this.journal.key; }
  private get where(): string { return this.journal.where; }

  // ---- open: fresh, resumed, or finished ----

  private async load(): Promise<void> {
    const opened = await this.journal.open();
    if (opened.kind === 'fresh') return;
    if (opened.kind === 'finished') return this.openFinished();
    await this.resume(opened.state);
    if (opened.unverified === undefined) return;
    if (await this.sink!.exists()) {
      this.warn(`${this.where}: the server does not list the parts of a pending upload (ListParts: ${opened.unverified}); resuming from fur's own record of them in ${this.journal.prefix}state`);
      return;
    }
    this.reset();
    await this.resume(await this.journal.restart(opened.state));
  }

  /** Forget a resumed writer (its upload turned out to be gone). */
  private reset(): void {
    this.sink = undefined;
    this.file = undefined;
    this.ds = undefined;
    this.layout = undefined;
    this.tails.clear();
    this.committed.clear();
    this.hashes.clear();
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

  /** Rebuild the writer where the last commit left it. */
  private async resume(s: State): Promise<void> {
    const extents = await this.journal.spilled(s);
    const meta = Buffer.from(s.meta, 'base64');
    this.sink = new S3PartSink(this.dest.uploader, this.key, s.uploadId!, {
      metaEnd: s.metaEnd,
      resume: { state: { parts: s.parts, held: s.held, tailStart: s.tailStart, end: s.end, meta }, extents },
    });
    const file = await H5File.open(this.sink, { eofHeadroom: 0, metaReserve: s.metaEnd - SUPERBLOCK_SIZE });
    continueMetaRegion(file, s.end, s.metaCursor, s.metaEnd);
    this.file = file;
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
      this.layout = s.layout;
    }
    for (const l of await this.journal.ledgers(s)) this.learn(l);
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
      this.layout = layout;
    } else {
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
    return { frames: this.journal.state!.frames, bytes };
  }

  /** Start the upload (the journal records it), and the HDF5 file in it. */
  private async start(): Promise<void> {
    const uploadId = await this.journal.begin({ metaEnd: META_END, dataset: this.o.dataset });
    this.sink = new S3PartSink(this.dest.uploader, this.key, uploadId, { metaEnd: META_END });
    const file = await H5File.create(this.sink, { metaReserve: META_END - SUPERBLOCK_SIZE, eofHeadroom: 0 });
    file.setAttr('/', 'fur_version', FUR_VERSION);
    file.setAttr('/', 'fur_method', 'append');
    this.file = file;
  }

  /** When the writer outgrows the metadata region it opens a new one among the data, which parts cannot take: stop cleanly first. */
  private checkMetaRegion(): void {
    const region = metaRegion(this.file!);
    const metaEnd = this.journal.state!.metaEnd;
    if (region.end !== metaEnd) {
      throw new FurError('metadata-full', `${this.where}: the metadata region (${metaEnd} bytes, part 1) is full; the frames so far are safe — end this capture and continue under a new object name`, { key: this.key });
    }
  }

  private async checkpoint(batch: Batch, bytes: number): Promise<void> {
    const sink = this.sink!;
    const checkpoint = await sink.checkpoint();
    // a resumed writer starts allocating at the recorded end: it must be where the writer is now
    const allocated = allocatorOf(this.file!).end;
    if (allocated !== checkpoint.state.end) throw new FurError('internal', `${this.where}: the file's data ends at ${checkpoint.state.end} but the writer has allocated up to ${allocated} (a bug in fur)`, { key: this.key });
    const ledger = await this.journal.commit({
      checkpoint,
      extentsOf: (ranges) => sink.extentsOf(ranges),
      deadLimit: this.deadLimit(),
      metaCursor: metaRegion(this.file!).cursor,
      tails: Object.fromEntries([...this.tails].map(([p, t]) => [p, Buffer.from(t.bytes).toString('base64')])),
      frames: batch.frames,
      bytes,
      files: ledgerFiles(batch, this.batchHashes),
    }, this.layout!);
    this.learn(ledger);
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
    if (this.journal.state!.frames === 0) {
      // nothing committed: nothing to publish
      await this.journal.abandon();
      await this.sink?.close();
      return;
    }
    await this.file.close();
    const done = await this.sink!.complete();
    await this.journal.settled();
    this.finished = true;
    // the chunk index reads only the metadata region, still in memory
    const refs = await buildReferences(this.file, fileUrl(this.dest, this.path));
    await putSidecar(this.dest, this.path, refs).catch((e) => this.warn(`chunk index not written beside ${this.where}: ${(e as Error).message}`));
    await this.journal.cleanup().catch((e) => this.warn(`could not remove the upload record ${this.journal.prefix}: ${(e as Error).message}`));
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
    throw new FurError('internal', 'H5File no longer exposes its allocator as s3-hdf5-target.ts expects; update continueMetaRegion/metaRegion', {});
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

