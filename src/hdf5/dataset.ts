/**
 * A dataset being written: contiguous (fixed size, written once) or chunked, growing along its
 * first axis. Rows are gathered into the current chunk row (the "tail"); a full chunk row is
 * encoded and written once. A partial tail is written only when the file commits, and is kept
 * in memory so later rows complete it: unfiltered chunks are completed in place; filtered ones
 * are published from one of two tail slots, in turn, and the index entry moves. A commit never
 * writes the slot the last published commit points to, so its readers keep valid bytes, and
 * the two slots are all the space partial chunk rows ever take.
 */
import { ByteWriter, UNDEF_ADDR } from './bytes.js';
import { Fletcher32 } from './checksum.js';
import { ChunkIndex, collectChunks, type ChunkEntry } from './chunk-index.js';
import { copyChunk, gridOf, product } from './chunking.js';
import { encodeDatatype, isVlen, type Datatype } from './datatype.js';
import { usageError, formatError } from './errors.js';
import { decodeChunk, encodeChunk } from './filters.js';
import { decodeCollection, encodeCollection, encodeHeapId, planCollections } from './global-heap.js';
import type { Attribute } from './messages/attribute.js';
import type { DatasetSpace } from './space-record.js';
import { encodeDataspace, UNLIMITED } from './messages/dataspace.js';
import { encodeFillValue } from './messages/fill-value.js';
import { encodeFilterPipeline, type Filter } from './messages/filter-pipeline.js';
import { encodeLayout, type Layout } from './messages/layout.js';
import { MSG, type Message } from './object-header.js';

/** What a dataset needs from the file it lives in. */
export interface DatasetHost {
  write(offset: number, data: Uint8Array): void;
  read(offset: number, length: number): Promise<Uint8Array>;
  allocData(size: number): number;
  /** largest global heap collection for vlen data */
  heapMaxBytes: number;
  /** chunk rows being encoded at once per dataset before append() waits */
  maxEncodeRows: number;
}

export interface DatasetState {
  path: string;
  type: Datatype;
  shape: number[];
  maxshape: number[];
  filters: Filter[];
  fill?: Uint8Array;
  /** compact datasets are CompactDataset's (compact.ts) */
  layout: Exclude<Layout, { class: 'compact' }>;
}

export class Dataset {
  readonly path: string;
  readonly type: Datatype;
  readonly filters: Filter[];
  readonly fill?: Uint8Array;
  /** dims; dims[0] of a growable dataset is the number of rows written so far */
  readonly shape: number[];
  readonly maxshape: number[];
  readonly frameShape: number[];
  readonly rowBytes: number;
  readonly chunk?: number[];
  /** where a contiguous dataset's bytes are */
  contiguous?: { address: number; size: number };
  index?: ChunkIndex;

  /** header bookkeeping, owned by the file */
  header = { address: 0, capacity: 0, continuation: undefined as { address: number; bytes: Uint8Array } | undefined, isNew: true, dirty: true };
  attrs: Attribute[] = [];
  /** index level counts at the last commit, to find new nodes */
  indexLevelCounts: number[] = [];

  private tail?: Uint8Array;
  /**
   * A chunk of a checksummed-only dataset being written in place: its rows went straight from
   * the caller's buffers to their place (kept here, not copied, until the chunk is full and its
   * checksum follows them). tailRows counts them; none is publishable before the chunk is full.
   */
  private summing?: { address: number; pieces: Uint8Array[]; sum: Fletcher32 };
  private tailRows = 0;
  private tailWrittenRows = 0;
  private chunkRowsDone = 0;
  private chain: Promise<void> = Promise.resolve();
  private encoding = 0;
  private failure: unknown;
  private publishedRows = -1;
  private chunkCache?: Map<string, ChunkEntry & { offset: number[] }>;
  /**
   * Two slots side by side, each room for a chunk row of chunks of `chunkSize` bytes (the largest
   * a chunk can encode to): a partial chunk row is published from them, in turn. Allocated at the
   * first partial commit and kept for the file's life.
   */
  private slots?: { address: number; chunkSize: number };
  /** the slot (0 or 1) the last published commit's partial chunk row is in, if it is in one */
  private publishedSlot?: number;
  /** which chunk row each slot holds, and how many of its rows (as this writer wrote it) */
  private slotHeld: ({ row: number; rows: number } | undefined)[] = [];
  /** the last chunk row's entries when partial, as the sealed commit and the published one show it */
  private sealedTail: ChunkEntry[] = [];
  private publishedTail: ChunkEntry[] = [];
  /** the chunk a partial row is written into in place (checksummed-only), at those two commits */
  private sealedInPlace?: { row: number; address: number };
  private publishedInPlace?: { row: number; address: number };
  /** a reopened partial chunk row's place, taken up (its rows written back there) by the next append */
  private reservedInPlace?: { row: number; address: number };

  constructor(private host: DatasetHost, s: DatasetState) {
    this.path = s.path;
    this.type = s.type;
    this.filters = s.filters;
    this.fill = s.fill;
    this.shape = [...s.shape];
    this.maxshape = [...s.maxshape];
    this.frameShape = s.shape.slice(1);
    this.rowBytes = product(this.frameShape) * s.type.size;
    if (s.layout.class === 'chunked') {
      this.chunk = s.layout.chunk;
      this.index = new ChunkIndex(this.chunk, this.frameShape);
    } else {
      this.contiguous = { address: s.layout.address, size: s.layout.size };
    }
  }

  get growable(): boolean { return this.maxshape[0] === UNLIMITED; }
  /** rows appended so far (written or still in the tail) */
  get length(): number {
    if (this.contiguous) return this.shape[0];
    return this.chunkRowsDone * this.chunk![0] + this.tailRows;
  }
  /** rows whose bytes are written and will be published by the next commit */
  get writtenRows(): number {
    if (this.contiguous) return this.shape[0];
    return this.chunkRowsDone * this.chunk![0] + this.tailWrittenRows;
  }
  private get rowsContiguous(): boolean {
    return this.chunk!.slice(1).every((c, i) => c === this.frameShape[i]);
  }
  private get chunkBytes(): number { return product(this.chunk!) * this.type.size; }

  /**
   * Append whole rows (C order, the dataset's byte order). The bytes may be written straight
   * from `data` without a copy: do not modify it afterwards.
   */
  async append(data: Uint8Array | ArrayBufferView, rows?: number): Promise<void> {
    if (this.failure) throw this.failure;
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const n = rows ?? (this.rowBytes ? bytes.length / this.rowBytes : 0);
    if (!Number.isInteger(n) || n * this.rowBytes !== bytes.length) {
      throw usageError(this.path, `append of ${bytes.length} bytes is not a whole number of rows of ${this.rowBytes} bytes`);
    }
    if (this.contiguous) throw usageError(this.path, 'contiguous datasets are written once with write(), not appended to');
    if (!this.growable && this.length + n > this.shape[0]) {
      throw usageError(this.path, `dataset holds ${this.shape[0]} rows; cannot append ${n} after ${this.length}`);
    }
    const c0 = this.chunk![0];
    if (this.reservedInPlace) this.takeUpInPlace();
    if (this.writesInPlace) { this.appendInPlace(bytes, n); return; }
    if (this.growable && this.checksumInPlace && !this.tail) { this.appendChecksummed(bytes, n); return; }
    let at = 0;
    while (at < n) {
      if (this.tailRows === 0 && n - at >= c0 && this.rowsContiguous && this.filters.length === 0) {
        // whole chunk rows straight from the caller's buffer
        const whole = Math.floor((n - at) / c0);
        for (let k = 0; k < whole; k++) {
          this.emitRow(this.chunkRowsDone, bytes.subarray((at + k * c0) * this.rowBytes, (at + (k + 1) * c0) * this.rowBytes), c0, 0);
          this.chunkRowsDone++;
        }
        at += whole * c0;
        continue;
      }
      if (!this.tail) this.tail = this.newTail();
      const take = Math.min(c0 - this.tailRows, n - at);
      this.tail.set(bytes.subarray(at * this.rowBytes, (at + take) * this.rowBytes), this.tailRows * this.rowBytes);
      this.tailRows += take;
      at += take;
      if (this.tailRows === c0) {
        const full = this.tail;
        const from = this.tailWrittenRows;
        this.tail = undefined; // the full buffer now belongs to the writes in flight
        this.tailRows = 0;
        this.tailWrittenRows = 0;
        this.emitRow(this.chunkRowsDone, full, c0, from);
        this.chunkRowsDone++;
      }
      if (this.encoding >= this.host.maxEncodeRows) await this.chain;
    }
    if (!this.growable && this.length === this.shape[0]) this.flushTail();
    if (this.failure) throw this.failure;
  }

  /**
   * Unfiltered chunks of whole rows in a growable dataset need no staging: each row goes straight
   * from the caller's buffer to its place in its chunk, as it arrives. No copy, no chunk buffer.
   */
  private get writesInPlace(): boolean {
    return this.growable && this.filters.length === 0 && this.rowsContiguous;
  }

  private appendInPlace(bytes: Uint8Array, n: number): void {
    const ix = this.index!;
    const c0 = this.chunk![0];
    let at = 0;
    this.chunkCache = undefined;
    while (at < n) {
      const row = this.chunkRowsDone;
      let address: number;
      if (this.tailRows === 0) {
        address = this.host.allocData(this.chunkBytes);
        ix.putRow(row, [{ address, size: this.chunkBytes, mask: 0 }]);
      } else address = ix.rowEntries(row)![0].address;
      const take = Math.min(c0 - this.tailRows, n - at);
      this.host.write(address + this.tailRows * this.rowBytes, bytes.subarray(at * this.rowBytes, (at + take) * this.rowBytes));
      this.tailRows += take;
      this.tailWrittenRows = this.tailRows;
      at += take;
      if (this.tailRows === c0) {
        this.chunkRowsDone++;
        this.tailRows = 0;
        this.tailWrittenRows = 0;
      }
    }
  }

  /**
   * Rows of a growable dataset whose only filter is Fletcher-32 go where they belong as they
   * arrive, the checksum summed over them on the way; the 4 checksum bytes follow once the chunk
   * is full. No chunk buffer is filled or allocated. A commit that must show a partial chunk
   * publishes a copy of its rows from a tail slot (flushTail); the rows that follow still go to
   * their place here.
   */
  private appendChecksummed(bytes: Uint8Array, n: number): void {
    const c0 = this.chunk![0];
    const size = this.chunkBytes;
    this.chunkCache = undefined;
    let at = 0;
    while (at < n) {
      this.summing ??= { address: this.host.allocData(size + 4), pieces: [], sum: new Fletcher32() };
      const s = this.summing;
      const take = Math.min(c0 - this.tailRows, n - at);
      const piece = bytes.subarray(at * this.rowBytes, (at + take) * this.rowBytes);
      this.host.write(s.address + this.tailRows * this.rowBytes, piece);
      s.pieces.push(piece);
      s.sum.update(piece);
      this.tailRows += take;
      at += take;
      if (this.tailRows === c0) {
        this.indexInPlace(s);
        this.chunkRowsDone++;
        this.tailRows = 0;
        this.tailWrittenRows = 0;
        this.summing = undefined;
      }
    }
  }

  /**
   * Append `rows` rows as one chunk that went through the dataset's filters already (a detector's
   * compressed frame), stored as it is: the chunk must hold exactly `rows` whole rows, at a chunk
   * boundary.
   */
  appendChunk(stored: Uint8Array, rows: number): void {
    if (this.failure) throw this.failure;
    if (!this.chunk || !this.growable || this.tailRows !== 0 || this.summing || rows !== this.chunk[0] || !this.rowsContiguous) {
      throw usageError(this.path, `a stored chunk holds whole chunks of ${this.chunk?.[0]} rows, appended at a chunk boundary; got ${rows} rows after ${this.length}`);
    }
    this.chunkCache = undefined;
    const row = this.chunkRowsDone++;
    const address = this.host.allocData(stored.length);
    this.host.write(address, stored);
    const entries = [{ address, size: stored.length, mask: 0 }];
    // indexed behind anything still encoding, so rows go in in order (see appendChecksummed)
    this.chain = this.chain.then(() => { this.index!.putRow(row, entries); });
  }

  /** Append variable-length elements (strings for vlen-str, byte arrays for vlen-bytes). */
  async appendVlen(items: (string | Uint8Array)[]): Promise<void> {
    if (!isVlen(this.type)) throw usageError(this.path, `appendVlen on a ${this.type.class} dataset`);
    if (this.frameShape.length) throw usageError(this.path, 'vlen datasets are one-dimensional');
    await this.append(this.storeVlen(items), items.length);
  }

  /** place objects in new global heap collections; returns their 16-byte element ids */
  storeVlen(items: (string | Uint8Array)[]): Uint8Array {
    const objs = items.map((x) => (typeof x === 'string' ? new Uint8Array(Buffer.from(x, 'utf8')) : x));
    const w = new ByteWriter(objs.length * 16);
    for (const group of planCollections(objs, this.host.heapMaxBytes)) {
      const bytes = encodeCollection(group);
      const addr = this.host.allocData(bytes.length);
      this.host.write(addr, bytes);
      // HDF5 counts a string's length in bytes and a sequence's in elements: both bytes here
      group.forEach((o, i) => encodeHeapId(w, o.length, addr, i + 1));
    }
    return w.finish();
  }

  /** Write all rows of a fixed-size dataset. */
  async write(data: Uint8Array | ArrayBufferView): Promise<void> {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (this.contiguous) {
      if (bytes.length !== this.contiguous.size) throw usageError(this.path, `write of ${bytes.length} bytes; dataset holds ${this.contiguous.size}`);
      if (bytes.length) this.host.write(this.contiguous.address, bytes);
      return;
    }
    await this.append(bytes);
  }

  /**
   * A chunk row being filled. Followed by 4 spare bytes (outside the view) when the dataset's only
   * filter is Fletcher-32, so the full chunk is checksummed in place, not copied (see emitRow).
   */
  private newTail(): Uint8Array {
    const n = this.chunk![0] * this.rowBytes;
    const t = this.checksumInPlace ? new Uint8Array(new ArrayBuffer(n + 4), 0, n) : new Uint8Array(n);
    if (this.fill && this.fill.some((b) => b !== 0)) for (let i = 0; i < t.length; i += this.fill.length) t.set(this.fill, i);
    return t;
  }

  private get checksumInPlace(): boolean {
    return this.filters.length === 1 && this.filters[0]!.id === 'fletcher32' && this.rowsContiguous;
  }

  private chunkBuffer(): Uint8Array {
    const b = new Uint8Array(this.chunkBytes);
    if (this.fill && this.fill.some((x) => x !== 0)) for (let i = 0; i < b.length; i += this.fill.length) b.set(this.fill, i);
    return b;
  }

  /** the bytes of every chunk of a chunk row, from `rows` frames in `buf` */
  private chunksOf(buf: Uint8Array, rows: number): Uint8Array[] {
    const ix = this.index!;
    if (this.rowsContiguous) {
      if (rows === this.chunk![0] && buf.length === this.chunkBytes) return [buf];
      const b = this.chunkBuffer();
      b.set(buf.subarray(0, rows * this.rowBytes));
      return [b];
    }
    const out: Uint8Array[] = [];
    for (let c = 0; c < ix.perRow; c++) {
      const b = this.chunkBuffer();
      copyChunk(buf, rows, this.frameShape, this.chunk!, gridOf(c, ix.grid), this.type.size, b);
      out.push(b);
    }
    return out;
  }

  /**
   * write chunk row `row` holding `rows` rows of `buf`; rows before `from` were written before.
   * `final`: no rows will follow this partial chunk row.
   */
  private emitRow(row: number, buf: Uint8Array, rows: number, from: number, final = false): void {
    const ix = this.index!;
    this.chunkCache = undefined;
    const previous = ix.rowEntries(row);
    if (this.filters.length === 0) {
      const size = this.chunkBytes;
      if (this.rowsContiguous) {
        const fresh = !(previous && from > 0);
        const address = fresh ? this.host.allocData(size) : previous[0].address;
        const start = fresh ? 0 : from;
        // a fixed-size dataset shows every row of a partial chunk: write its fill-valued rest too
        const end = fresh && !this.growable ? size : rows * this.rowBytes;
        this.host.write(address + start * this.rowBytes, buf.subarray(start * this.rowBytes, end));
        ix.putRow(row, [{ address, size, mask: 0 }]);
      } else {
        const chunks = this.chunksOf(buf, rows);
        const entries = chunks.map((bytes, c) => {
          const address = previous && from > 0 ? previous[c].address : this.host.allocData(size);
          this.host.write(address, bytes);
          return { address, size, mask: 0 };
        });
        ix.putRow(row, entries);
      }
      return;
    }
    // filtered: encode now (in parallel), place and index in row order
    // a full tail handed over by append() (its own buffer, with room) is checksummed in place
    const room = this.checksumInPlace && buf.length === this.chunkBytes && rows === this.chunk![0];
    const encoded = Promise.all(this.chunksOf(buf, rows).map((b) => encodeChunk(b, this.filters, this.type.size, room && b === buf)));
    this.encoding++;
    // a partial chunk row of a growable dataset is written again at the next commit: a tail slot
    // (unless none will follow and the dataset has no slots yet: its encoded size then suffices)
    const partial = this.growable && rows < this.chunk![0];
    this.chain = Promise.all([this.chain, encoded]).then(([, encs]) => {
      this.encoding--;
      const slot = partial && !(final && !this.slots);
      ix.putRow(row, slot ? this.placeInSlot(encs, row, rows) : encs.map((bytes) => this.placeFresh(bytes)));
    }).catch((e) => { this.encoding--; this.failure ??= e; });
  }

  /**
   * Write the partial tail so the next commit includes it. `final`: no rows will follow (the
   * capture's last commit), so a chunk filled in place is published where it is.
   */
  flushTail(final = false): void {
    if (this.contiguous || this.tailRows === this.tailWrittenRows) return;
    if (this.summing) {
      if (final) { this.publishInPlace(); return; }
      // the rows so far are published from a copy in a tail slot: their place keeps taking rows
      // (a chunk at a published address must not change under a reader)
      this.emitRow(this.chunkRowsDone, this.summedRows(), this.tailRows, 0);
      this.tailWrittenRows = this.tailRows;
      return;
    }
    if (!this.tail) return;
    const rows = this.tailRows;
    // a filtered chunk is encoded from a snapshot: the live tail keeps filling
    const buf = this.filters.length ? this.tail.slice() : this.tail;
    this.emitRow(this.chunkRowsDone, buf, rows, this.tailWrittenRows, final);
    this.tailWrittenRows = rows;
  }

  /** The chunk filled in place is whole: its checksum goes after it, and it takes its place in the index. */
  private indexInPlace(s: { address: number; sum: Fletcher32 }): void {
    const size = this.chunkBytes;
    const trailer = new Uint8Array(4);
    new DataView(trailer.buffer).setUint32(0, s.sum.digest(), true);
    this.host.write(s.address + size, trailer);
    const row = this.chunkRowsDone;
    const entries = [{ address: s.address, size: size + 4, mask: 0 }];
    // indexed behind everything already on the chain (a tail placed before, still encoding,
    // and chunks indexed this way behind it), so rows go in in order. Deciding by whether
    // something is still encoding is not enough: an encode can finish while a row deferred
    // behind it is not yet indexed, and the next row would then overtake it.
    this.chain = this.chain.then(() => { this.index!.putRow(row, entries); });
  }

  /** the rows of the chunk being filled in place, copied into a chunk buffer (fill value after them) */
  private summedRows(): Uint8Array {
    const tail = this.newTail();
    let at = 0;
    for (const piece of this.summing!.pieces) { tail.set(piece, at); at += piece.length; }
    return tail;
  }

  /**
   * The partial chunk being filled in place becomes its own published copy: the rest of it
   * filled, its checksum after it. Rows added later (none, after the capture's last commit) go
   * through a tail.
   */
  private publishInPlace(): void {
    const s = this.summing!;
    const from = this.tailRows * this.rowBytes;
    const rest = this.chunkBuffer().subarray(from);
    this.host.write(s.address + from, rest);
    s.sum.update(rest);
    this.indexInPlace(s);
    this.tail = this.summedRows();
    this.summing = undefined;
    this.tailWrittenRows = this.tailRows;
  }

  /** largest bytes a chunk of this dataset can encode to: the size of one chunk's place in a slot */
  private get slotChunkBytes(): number {
    let n = this.chunkBytes;
    for (const f of this.filters) {
      // zlib's bound for deflate (stored blocks included), with its 2-byte header and 4-byte trailer
      if (f.id === 'deflate') n += (n >>> 12) + (n >>> 14) + (n >>> 25) + 13 + 6;
      else if (f.id === 'fletcher32') n += 4;
    }
    return n;
  }

  /**
   * Place chunk row `row`'s encoded chunks, holding its first `rows` rows, in the tail slot the
   * last published commit does not point to (this runs after that commit published: see
   * H5File.commit). A checksummed-only chunk is stored as it is, so when the slot already holds
   * fewer rows of the same chunk row only the rows it lacks and the checksum are written: each
   * row goes to each slot once, not once per commit.
   */
  private placeInSlot(encs: Uint8Array[], row: number, rows: number): ChunkEntry[] {
    const size = this.slots?.chunkSize ?? this.slotChunkBytes;
    if (encs.some((b) => b.length > size)) return encs.map((b) => this.placeFresh(b));
    this.slots ??= { address: this.host.allocData(2 * encs.length * size), chunkSize: size };
    const slot = this.publishedSlot === 0 ? 1 : 0;
    const base = this.slots.address + slot * encs.length * size;
    const held = this.slotHeld[slot];
    const from = this.checksumInPlace && held?.row === row && held.rows <= rows ? held.rows * this.rowBytes : undefined;
    this.slotHeld[slot] = { row, rows };
    return encs.map((bytes, c) => {
      const address = base + c * size;
      if (from === undefined) this.host.write(address, bytes);
      else {
        this.host.write(address + from, bytes.subarray(from, rows * this.rowBytes));
        this.host.write(address + this.chunkBytes, bytes.subarray(this.chunkBytes));
      }
      return { address, size: bytes.length, mask: 0 };
    });
  }

  private placeFresh(bytes: Uint8Array): ChunkEntry {
    const address = this.host.allocData(bytes.length);
    this.host.write(address, bytes);
    return { address, size: bytes.length, mask: 0 };
  }

  /** which tail slot a chunk row's entries are in */
  private slotOf(entries: ChunkEntry[]): number | undefined {
    if (!this.slots || entries.length === 0) return undefined;
    const span = this.index!.perRow * this.slots.chunkSize;
    const at = entries[0]!.address - this.slots.address;
    return at >= 0 && at < 2 * span ? Math.floor(at / span) : undefined;
  }

  /** wait until every chunk of appended rows is placed and its write issued */
  async settle(): Promise<void> {
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /** the extent the next commit publishes; marks the header dirty when it changed */
  prepareCommit(completeOnly = false): void {
    if (this.growable) {
      // rows written in place are on the disk at once; a commit of complete chunks only leaves
      // a partial chunk unpublished unless an earlier commit already showed it
      this.shape[0] = completeOnly && this.writesInPlace
        ? Math.max(this.publishedRows, this.chunkRowsDone * this.chunk![0])
        : this.writtenRows;
    }
    if (this.shape[0] !== this.publishedRows || this.index?.dirty) this.header.dirty = true;
    if (this.index) {
      this.sealedTail = this.lastRowEntries(this.shape[0]);
      this.sealedInPlace = this.summing ? { row: this.chunkRowsDone, address: this.summing.address } : this.reservedInPlace;
    }
  }
  published(): void {
    this.publishedRows = this.shape[0];
    this.publishedTail = this.sealedTail;
    this.publishedInPlace = this.sealedInPlace;
    this.publishedSlot = this.slotOf(this.publishedTail);
  }

  /** the entries of the last chunk row of `rows` rows when it is partial (none when it is full) */
  private lastRowEntries(rows: number): ChunkEntry[] {
    const c0 = this.chunk![0];
    if (rows % c0 === 0) return [];
    return (this.index!.rowEntries(Math.floor(rows / c0)) ?? []).map((e) => ({ ...e }));
  }

  /**
   * What the file's space record keeps of this dataset for the commit being sealed (call after
   * prepareCommit): the state it publishes, the state published before, and the tail slots.
   */
  space(): Omit<DatasetSpace, 'header'> | undefined {
    if (!this.index || !this.growable) return undefined;
    return {
      next: { rows: this.shape[0], tail: this.sealedTail, inPlace: this.sealedInPlace },
      prev: { rows: Math.max(0, this.publishedRows), tail: this.publishedTail, inPlace: this.publishedInPlace },
      slots: this.slots,
    };
  }

  /**
   * Go back to a state a commit published: `rows` rows, `tail` the entries of its partial last
   * chunk row. For a reopened file whose next commit rewrote the index (in place, where
   * commits rewrite it) but never published: the next commit rewrites the index's last nodes
   * as they were, so the space that commit used can be used again.
   */
  async rollback(rows: number, tail: ChunkEntry[]): Promise<void> {
    if (!this.growable || !this.index) throw usageError(this.path, 'only growable datasets can be rolled back');
    await this.reopenAt(rows, tail);
  }

  /**
   * Continue from `rows` rows of the committed index (the last chunk row's entries replaced by
   * `tail` when given): its last nodes and the header are written again by the next commit.
   */
  private async reopenAt(rows: number, tail: ChunkEntry[]): Promise<void> {
    const c0 = this.chunk![0];
    this.index = await ChunkIndex.open(this.host.read, this.index!.root(), this.chunk!, this.frameShape, Math.ceil(rows / c0));
    if (rows % c0 && tail.length === this.index.perRow) this.index.putRow(Math.floor(rows / c0), tail);
    this.index.touchLast();
    this.indexLevelCounts = this.index.levelCounts();
    this.tail = undefined;
    this.summing = undefined;
    this.tailRows = 0;
    this.tailWrittenRows = 0;
    this.chunkCache = undefined;
    this.reservedInPlace = undefined;
    // what a slot holds of a chunk row may be rows given up now
    this.slotHeld = [];
    await this.restore(rows);
    this.header.dirty = true;
  }

  /**
   * Take up the tail slots and the chunk filled in place that a space record names (see
   * H5File.open). The restored partial row goes back to its place when rows follow it, so they
   * complete it there; opening writes nothing.
   */
  adoptSpace(slots: { address: number; chunkSize: number } | undefined, inPlace: { row: number; address: number } | undefined): void {
    if (!this.index) return;
    this.slots = slots;
    this.publishedSlot = this.slotOf(this.publishedTail);
    if (inPlace && this.tail && this.checksumInPlace && this.growable && this.tailRows > 0 && inPlace.row === this.chunkRowsDone) {
      this.reservedInPlace = this.publishedInPlace = this.sealedInPlace = { ...inPlace };
    }
  }

  /** the restored partial row goes back to its place (reservedInPlace), and is summed from there on */
  private takeUpInPlace(): void {
    const at = this.reservedInPlace!;
    this.reservedInPlace = undefined;
    const rows = this.tail!.subarray(0, this.tailRows * this.rowBytes);
    this.host.write(at.address, rows);
    this.summing = { address: at.address, pieces: [rows], sum: new Fletcher32().update(rows) };
    this.tail = undefined;
  }

  messages(): Message[] {
    const layout: Layout = this.contiguous
      ? { class: 'contiguous', ...this.contiguous }
      : { class: 'chunked', btreeAddress: this.index!.root(), chunk: this.chunk!, elementSize: this.type.size };
    const msgs: Message[] = [
      { type: MSG.dataspace, body: encodeDataspace({ dims: this.shape, maxdims: this.maxshape }).finish() },
      { type: MSG.datatype, body: encodeDatatype(this.type).finish() },
      { type: MSG.fillValue, body: encodeFillValue({ alloc: this.contiguous ? 'early' : 'incremental', value: this.fill }).finish() },
      { type: MSG.layout, body: encodeLayout(layout).finish() },
    ];
    if (this.filters.length) msgs.push({ type: MSG.filterPipeline, body: encodeFilterPipeline(this.filters, this.type.size).finish() });
    return msgs;
  }

  // ---- reading back (reopen, verify) ----

  /**
   * Cut a reopened growable dataset back to `rows` rows (repairing per-frame datasets that a
   * crash left longer than the frames they describe). Published by the next commit.
   */
  async truncate(rows: number): Promise<void> {
    if (!this.growable || !this.index) throw usageError(this.path, 'only growable datasets can be truncated');
    if (rows >= this.shape[0] && rows >= this.length) return;
    await this.reopenAt(rows, []);
  }

  /** Restore the tail of a reopened dataset: `rows` rows are committed. */
  async restore(rows: number, opts: { readTail?: boolean } = {}): Promise<void> {
    // a fixed-size dataset keeps its extent; `rows` is how far it was written
    if (this.growable) this.shape[0] = rows;
    this.publishedRows = this.shape[0];
    this.header.isNew = false;
    this.header.dirty = false;
    if (this.contiguous) return;
    const c0 = this.chunk![0];
    this.publishedTail = this.sealedTail = this.lastRowEntries(rows);
    this.publishedInPlace = this.sealedInPlace = undefined;
    this.publishedSlot = this.slotOf(this.publishedTail);
    this.chunkRowsDone = Math.floor(rows / c0);
    const partial = rows % c0;
    if (partial && this.writesInPlace) {
      // the rest of the chunk is written in place later: only the row count is needed
      this.tailRows = partial;
      this.tailWrittenRows = partial;
    } else if (partial && opts.readTail !== false) {
      const buf = this.newTail();
      await this.readChunkRow(this.chunkRowsDone, buf, this.index!.rowEntries(this.chunkRowsDone)!);
      this.tail = buf;
      this.tailRows = partial;
      this.tailWrittenRows = partial;
    }
  }

  private async readChunkRow(row: number, into: Uint8Array, entries: (ChunkEntry | undefined)[], check = true): Promise<void> {
    const ix = this.index!;
    for (let c = 0; c < ix.perRow; c++) {
      const e = entries[c];
      if (!e) continue; // never written: keeps the fill value
      const stored = await this.host.read(e.address, e.size);
      if (stored.length < e.size) throw formatError(this.path, `chunk at ${e.address} is cut short (file truncated?)`);
      const raw = this.filters.length ? await decodeChunk(stored, this.filters, this.type.size, `${this.path} chunk ${row}`, check) : stored;
      const rows = Math.min(this.chunk![0], Math.max(0, this.shape[0] - row * this.chunk![0]));
      if (this.rowsContiguous) into.set(raw.subarray(0, rows * this.rowBytes));
      else copyChunk(into, rows, this.frameShape, this.chunk!, gridOf(c, ix.grid), this.type.size, raw, false);
    }
  }

  /**
   * Read committed rows [start, end) as raw element bytes (vlen: 16-byte heap ids). A chunk whose
   * Fletcher-32 fails throws `checksum-mismatch`, unless `checksums: false` (to see what changed).
   */
  async read(start = 0, end = this.shape[0], opts: { checksums?: boolean } = {}): Promise<Uint8Array> {
    end = Math.min(end, this.shape[0]);
    const out = new Uint8Array(Math.max(0, end - start) * this.rowBytes);
    if (end <= start) return out;
    if (this.contiguous) {
      if (this.contiguous.address === UNDEF_ADDR) return out;
      out.set(await this.host.read(this.contiguous.address + start * this.rowBytes, out.length));
      return out;
    }
    const ix = this.index!;
    const c0 = this.chunk![0];
    for (let row = Math.floor(start / c0); row * c0 < end; row++) {
      let entries: (ChunkEntry | undefined)[] | undefined = ix.rowEntries(row);
      if (!entries) {
        this.chunkCache ??= await collectChunks((o, l) => this.host.read(o, l), ix.root(), this.chunk!.length);
        entries = Array.from({ length: ix.perRow }, (_, c) => this.chunkCache!.get(ix.offsetOf(row, c).join(',')));
      }
      const buf = this.newTail();
      await this.readChunkRow(row, buf, entries, opts.checksums !== false);
      const lo = Math.max(start, row * c0);
      const hi = Math.min(end, (row + 1) * c0);
      out.set(buf.subarray((lo - row * c0) * this.rowBytes, (hi - row * c0) * this.rowBytes), (lo - start) * this.rowBytes);
    }
    return out;
  }

  /** Read committed vlen elements [start, end). */
  async readVlen(start = 0, end = this.shape[0], opts: { checksums?: boolean } = {}): Promise<Uint8Array[]> {
    const ids = await this.read(start, end, opts);
    const v = new DataView(ids.buffer, ids.byteOffset, ids.byteLength);
    const heaps = new Map<number, Map<number, Uint8Array>>();
    const out: Uint8Array[] = [];
    for (let o = 0; o < ids.length; o += 16) {
      const len = v.getUint32(o, true);
      const addr = v.getUint32(o + 4, true) + v.getUint32(o + 8, true) * 0x100000000;
      const idx = v.getUint32(o + 12, true);
      if (len === 0 && addr === 0) { out.push(new Uint8Array(0)); continue; }
      let heap = heaps.get(addr);
      if (!heap) {
        const head = await this.host.read(addr, 16);
        const size = new DataView(head.buffer, head.byteOffset).getUint32(8, true);
        heap = decodeCollection(await this.host.read(addr, size), addr);
        heaps.set(addr, heap);
      }
      const obj = heap.get(idx);
      if (!obj) throw formatError(this.path, `heap object ${idx} missing in collection at ${addr}`);
      out.push(obj.subarray(0, len));
    }
    return out;
  }
}
