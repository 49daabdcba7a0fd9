/**
 * An HDF5 file fur writes (and reopens to continue writing).
 *
 * Commit protocol — every intermediate state of the destination is a valid file showing the
 * previous or the new commit, never a mix:
 *   A. raw data (chunks, heap collections) and a byte at the new EOF  → barrier
 *   A'. the superblock with the new EOF, when it grows → barrier (one that shrinks, at close,
 *       goes with B)
 *   B. index nodes, new object headers, continuation blocks (a new file's superblock) → barrier
 *   C. existing object headers with the new extents and links (the publication) → barrier
 * The EOF moves before any header or index node points past it (B rewrites the rightmost index
 * nodes in place, so they are reachable at once), because libhdf5 refuses to read beyond the
 * superblock's EOF; and the file physically reaches that EOF before the superblock says so,
 * because libhdf5 refuses a file shorter than its EOF.
 */
import { ByteReader, ByteWriter, UNDEF_ADDR } from './bytes.js';
import { Allocator } from './allocator.js';
import { ChunkIndex, collectChunks } from './chunk-index.js';
import { CompactDataset } from './compact.js';
import { defaultChunks, product } from './chunking.js';
import { decodeDatatype, isVlen, parseDtype, type Datatype, type DtypeSpec } from './datatype.js';
import { Dataset, type DatasetState } from './dataset.js';
import { formatError, usageError } from './errors.js';
import { decodeCollection, encodeCollection, encodeHeapId, planCollections } from './global-heap.js';
import { decodeAttribute, encodeAttribute, type Attribute } from './messages/attribute.js';
import { encodeAttributeInfo } from './messages/attribute-info.js';
import { decodeDataspace, UNLIMITED } from './messages/dataspace.js';
import { decodeFillValue } from './messages/fill-value.js';
import { decodeFilterPipeline, type Filter } from './messages/filter-pipeline.js';
import { decodeLayout } from './messages/layout.js';
import { decodeLink, encodeGroupInfo, encodeLink, encodeLinkInfo, isSoft, type Link } from './messages/links.js';
import { MSG, encodeHeader, headerSize, messagesSize, readHeader, type Message } from './object-header.js';
import type { RandomAccess, Sink } from './sink.js';
import { encodeRecord, latestRecord, RECORD_AREA, recordAddress, type SpaceRecord } from './space-record.js';
import { decodeSuperblock, encodeSuperblock, SUPERBLOCK_SIZE } from './superblock.js';
import { encodeNumbers, fixedString, toPlain, type AttrValue, type PlainValue } from './values.js';

export interface FileOptions {
  /** bytes reserved after the superblock for metadata (headers, index nodes) */
  metaReserve?: number;
  /** largest global heap collection written for vlen data */
  heapMaxBytes?: number;
  /** filtered chunk rows encoding at once per dataset */
  maxEncodeRows?: number;
  /** sync (fsync) at each commit barrier, where the sink offers it */
  durable?: boolean;
  /**
   * Space the superblock's EOF keeps ahead of the data while the file is open. A reader that
   * opens the file reads the superblock first and an object header a moment later; with
   * headroom, the chunks that header names still lie below the EOF that reader saw. Trimmed
   * at close. Default: an eighth of the file, between 1 and 64 MiB.
   */
  eofHeadroom?: number;
  /** open only to read: partial tail chunks are not loaded, and nothing is ever written */
  readOnly?: boolean;
  /**
   * A second handle on the same file, for what a commit writes after its data (index nodes,
   * object headers, the superblock). Its barriers then wait for the commit's own writes only,
   * not for the next batch's data, which the caller may append while a commit publishes
   * (commit's `onSealed`). Closed with the file.
   */
  metaSink?: Sink;
  /**
   * create: write nothing until the first commit (default: commit the empty file at once). For a
   * file made under a temporary name and renamed once its first data is committed: that data
   * need not wait for a commit of the empty file.
   */
  deferFirstCommit?: boolean;
  /**
   * create: keep a space record (space-record.ts) at the start of the metadata region, so a
   * writer that reopens the file uses the space after the last commit — not after the EOF, with
   * a new metadata region — and gets back the space of a commit that never published. For files
   * that are reopened to append to (one more commit's worth of metadata region: 8 KiB).
   */
  spaceRecord?: boolean;
}

export interface DatasetOptions {
  dtype: DtypeSpec;
  /** initial dims; a growable dataset usually starts with 0 rows */
  shape: number[];
  /** null = unlimited (first axis only); omitted = fixed at shape */
  maxshape?: (number | null)[];
  chunks?: number[];
  filters?: Filter[];
  /** fill value for unwritten elements: a number, or one element's raw bytes */
  fillValue?: number | bigint | Uint8Array;
  layout?: 'contiguous' | 'chunked';
}

class Group {
  header = { address: 0, capacity: 0, continuation: undefined as { address: number; bytes: Uint8Array } | undefined, isNew: true, dirty: true };
  links: Link[] = [];
  attrs: Attribute[] = [];
  constructor(readonly path: string) {}
  messages(): Message[] {
    return [
      { type: MSG.linkInfo, body: encodeLinkInfo().finish() },
      { type: MSG.groupInfo, body: encodeGroupInfo().finish() },
      ...this.links.map((l) => ({ type: MSG.link, body: encodeLink(l).finish() })),
    ];
  }
}

type Obj = Group | Dataset | CompactDataset;
const HEADER_SLACK = 256;
/**
 * Metadata kept for reading back without a round trip, at most (bytes): the index nodes of about
 * a million chunks. Beyond that the oldest are read from the file again when needed.
 */
const REMEMBER_MAX_BYTES = 64 << 20;

function parentOf(path: string): [string, string] {
  const i = path.lastIndexOf('/');
  return [i <= 0 ? '/' : path.slice(0, i), path.slice(i + 1)];
}
function normalize(path: string): string {
  const parts = path.split('/').filter(Boolean);
  for (const p of parts) if (p === '.' || p === '..') throw usageError(path, 'path may not contain . or ..');
  return '/' + parts.join('/');
}

export interface CommitOptions {
  /** publish whole chunks only: a partial last chunk stays unpublished (an append to S3) */
  complete?: boolean;
  /** a dataset whose header is published last, in a round of its own */
  publishLast?: Dataset;
  /** state the EOF at the end of the data, with no headroom (the capture's last commit) */
  trim?: boolean;
  /** appending may go on (see commitNow) */
  onSealed?: () => void;
  /**
   * This commit's new structures (index nodes, new headers) are written, not yet confirmed or
   * published: what this file reports of itself (shapes, chunkRefs) is the commit's, and is read
   * without a round trip. For work that can run alongside the publication rounds.
   */
  onStructured?: () => void;
}

export class H5File {
  private objects = new Map<string, Obj>();
  /** attributes whose variable-length elements are still to be placed (see placeStaged) */
  private staged = new Map<Attribute, { objects: Uint8Array[]; lengths: number[] }>();
  /** writes not yet settled, and the sink each went to */
  private pending = new Map<Promise<void>, Sink>();
  /** where a commit's metadata goes (the sink itself unless a second handle was given) */
  private meta: Sink;
  /** the commit still publishing: the next one seals only after it (see commit) */
  private publishing: Promise<void> = Promise.resolve();
  /** sinks written to since their last barrier */
  private unsynced = new Set<Sink>();
  /** small metadata as this file last wrote it (index nodes, attribute heaps), by address */
  private remembered = new Map<number, Uint8Array>();
  private rememberedBytes = 0;
  /** calls of remember so far (see readKept) */
  private rememberings = 0;
  private failure: unknown;
  private physicalEnd: number;
  private closed = false;
  readonly heapMaxBytes: number;
  readonly maxEncodeRows: number;
  private durable: boolean;
  private readonly readOnly: boolean;
  private eofHeadroom?: number;
  /** the EOF the superblock states */
  private statedEof = 0;
  /** when a barrier last confirmed a superblock stating a new EOF (ms, Date.now) */
  private eofStatedAt = 0;
  /** the space record: where its two copies are, the last one written, and that commit's end and metadata region */
  private space?: { area: number; seq: number; prevEnd: number; prevMeta: { cursor: number; end: number; regionSize: number } };

  private constructor(private sink: Sink & Partial<RandomAccess>, private alloc: Allocator, physicalEnd: number, opts: FileOptions) {
    this.physicalEnd = physicalEnd;
    this.heapMaxBytes = opts.heapMaxBytes ?? 1 << 20;
    this.maxEncodeRows = opts.maxEncodeRows ?? 4;
    this.durable = opts.durable ?? false;
    this.readOnly = opts.readOnly ?? false;
    this.eofHeadroom = opts.eofHeadroom;
    this.meta = opts.metaSink ?? sink;
  }

  /** bytes the file spans now: its data and metadata, and the headroom its EOF states */
  get size(): number { return Math.max(this.physicalEnd, this.statedEof); }

  private headroom(end: number): number {
    if (this.eofHeadroom !== undefined) return this.eofHeadroom;
    return Math.min(64 << 20, Math.max(1 << 20, Math.floor(end / 8)));
  }

  /** Start a new, empty file on `sink` (which should be empty). */
  static async create(sink: Sink & Partial<RandomAccess>, opts: FileOptions = {}): Promise<H5File> {
    const reserve = (opts.metaReserve ?? 16384) + (opts.spaceRecord ? RECORD_AREA : 0);
    const alloc = new Allocator(SUPERBLOCK_SIZE + reserve, SUPERBLOCK_SIZE, SUPERBLOCK_SIZE + reserve, reserve);
    const f = new H5File(sink, alloc, 0, opts);
    if (opts.spaceRecord) f.space = { area: alloc.meta(RECORD_AREA), seq: 0, prevEnd: alloc.end, prevMeta: alloc.metaState() };
    const root = new Group('/');
    f.placeHeader(root, root.messages());
    f.objects.set('/', root);
    if (!opts.deferFirstCommit) await f.commit();
    return f;
  }

  /** Reopen a file fur wrote, to read it or continue appending. */
  static async open(sink: RandomAccess, opts: FileOptions = {}): Promise<H5File> {
    const size = await sink.size();
    // a writer reads the space record with the superblock, in the same request
    const head = await sink.read(0, SUPERBLOCK_SIZE + (opts.readOnly ? 0 : RECORD_AREA));
    const sb = decodeSuperblock(head.subarray(0, SUPERBLOCK_SIZE));
    if (size < sb.eof) throw formatError('file', `truncated: ${size} bytes, superblock says ${sb.eof}`);
    // Everything committed lies below the stated EOF; bytes past it belong to a commit that never
    // published, so new data may reuse that space. New metadata goes to a fresh region at the end.
    // A file with a space record says better (resumeSpace).
    const reserve = opts.metaReserve ?? 16384;
    const f = new H5File(sink, new Allocator(sb.eof, sb.eof, sb.eof, reserve), size, opts);
    f.statedEof = sb.eof;
    await f.load('/', sb.rootAddress);
    if (!f.readOnly) await f.resumeSpace(latestRecord(head.subarray(SUPERBLOCK_SIZE)), sb.eof);
    return f;
  }

  /**
   * A file with a space record (FileOptions.spaceRecord) is continued where its last commit
   * ended. When the record's commit never published (a crash between its data and its last
   * header), the datasets go back to the commit before it and a first commit writes their index
   * and headers as that commit left them; only then is the space the lost commit used free.
   */
  private async resumeSpace(rec: SpaceRecord | undefined, eof: number): Promise<void> {
    if (!rec) return;
    this.space = { area: SUPERBLOCK_SIZE, seq: rec.seq, prevEnd: this.alloc.end, prevMeta: this.alloc.metaState() };
    if (rec.incomplete) return;
    const byHeader = new Map<number, Dataset>();
    for (const o of this.objects.values()) if (o instanceof Dataset) byHeader.set(o.header.address, o);
    const found = rec.datasets.map((d) => ({ d, ds: byHeader.get(d.header) }));
    const published = found.every(({ d, ds }) => ds?.shape[0] === d.next.rows);
    // a record that does not describe this file (changed by other software) is not trusted. A
    // dataset may show more rows than the record's commit: published by a commit that a repair
    // (below) was undoing when it was cut short
    const plausible = rec.prevEnd <= eof && (!published || rec.end <= eof)
      && found.every(({ d, ds }) => !ds || ds.shape[0] >= d.prev.rows);
    if (!plausible) return;
    let end = rec.end;
    let meta = rec.meta;
    if (!published) {
      for (const { d, ds } of found) if (ds) await ds.rollback(d.prev.rows, d.prev.tail);
      // a metadata region opened by the lost commit lies among its data: that space stays used
      if (rec.meta.end - rec.meta.regionSize < rec.prevEnd) end = rec.prevEnd;
      // the metadata the lost commit added (index nodes, headers) is free too, unless something
      // published points to it: a header a first publication round wrote, say
      const freed = (a: number) => a >= rec.prevMeta.cursor && a < rec.meta.cursor;
      if (rec.prevMeta.end === rec.meta.end && !this.structureAddresses().some(freed)) {
        meta = rec.prevMeta;
        for (const { ds } of found) ds?.index?.dropSpares(freed);
      }
    }
    this.alloc = Allocator.resume(end, meta);
    this.space.prevEnd = end;
    this.space.prevMeta = meta;
    for (const { d, ds } of found) {
      if (!ds) continue;
      const state = published ? d.next : d.prev;
      const slots = d.slots && d.slots.address + 2 * (ds.index?.perRow ?? 1) * d.slots.chunkSize <= end ? d.slots : undefined;
      const inPlace = state.inPlace && state.inPlace.address < end ? state.inPlace : undefined;
      ds.adoptSpace(slots, inPlace);
    }
    // (after the datasets took up their slots: this commit's record must name them too)
    if (!published) await this.commit();
  }

  /**
   * Metadata this file wrote (index nodes, attribute heaps) is read back without a round trip:
   * chunk references and the sidecar after every commit would otherwise wait for the network.
   */
  private read = (offset: number, length: number): Promise<Uint8Array> => {
    const kept = this.recall(offset, length);
    if (kept) return Promise.resolve(kept);
    if (!this.sink.read) throw usageError('file', 'sink cannot read back');
    return this.sink.read(offset, length);
  };

  /**
   * `read`, keeping what came over the network as if this file had written it: metadata a
   * previous run wrote (attribute heaps, index nodes), which a reopened file reads again after
   * every commit for the sidecar — two round trips per string attribute, so over a long link a
   * resumed capture spent tens of seconds between commits. Only a writer keeps it: holding the
   * lease, it alone changes the file, and what it changes in place (index nodes) it remembers
   * itself. Bytes read while this file remembered something it wrote may be older: not kept.
   */
  private readKept = async (offset: number, length: number): Promise<Uint8Array> => {
    const kept = this.recall(offset, length);
    if (kept) return kept;
    const before = this.rememberings;
    const bytes = await this.read(offset, length);
    if (!this.readOnly && before === this.rememberings) this.remember(offset, bytes);
    return bytes;
  };

  /** The remembered bytes at [offset, offset + length), when one block holds them. */
  private recall(offset: number, length: number): Uint8Array | undefined {
    const block = this.remembered.get(offset); // a whole node, read at its address
    if (block && length <= block.length) return block.slice(0, length);
    for (const [at, bytes] of this.remembered) {
      if (offset >= at && offset + length <= at + bytes.length) return bytes.slice(offset - at, offset - at + length);
    }
    return undefined;
  }

  private async load(path: string, address: number): Promise<void> {
    const h = await readHeader(this.read, address);
    const attrs = h.messages.filter((m) => m.type === MSG.attribute).map((m) => decodeAttribute(new ByteReader(m.body), m.body.length));
    const layoutMsg = h.messages.find((m) => m.type === MSG.layout);
    const layout = layoutMsg && decodeLayout(new ByteReader(layoutMsg.body));
    let obj: Obj;
    if (layout?.class === 'compact') {
      const get = (t: number) => h.messages.find((m) => m.type === t)!.body;
      obj = new CompactDataset(path, decodeDatatype(new ByteReader(get(MSG.datatype))), decodeDataspace(new ByteReader(get(MSG.dataspace))).dims, layout.data);
    } else if (layout) {
      const get = (t: number) => h.messages.find((m) => m.type === t);
      const space = decodeDataspace(new ByteReader(get(MSG.dataspace)!.body));
      const type = decodeDatatype(new ByteReader(get(MSG.datatype)!.body));
      const fillMsg = get(MSG.fillValue);
      const fill = fillMsg ? decodeFillValue(new ByteReader(fillMsg.body)).value : undefined;
      const pipe = get(MSG.filterPipeline);
      const filters = pipe ? decodeFilterPipeline(new ByteReader(pipe.body)) : [];
      const maxshape = space.maxdims ?? space.dims;
      const ds = new Dataset(this.host(), { path, type, shape: space.dims, maxshape, filters, fill, layout });
      let written = space.dims[0];
      if (layout.class === 'chunked') {
        // a fixed-size dataset may be only partly written: its index says how far
        const chunkRows = maxshape[0] === UNLIMITED ? Math.ceil(written / layout.chunk[0]) : await ChunkIndex.presentRows(this.read, layout.btreeAddress, layout.chunk);
        written = Math.min(written, chunkRows * layout.chunk[0]);
        ds.index = await ChunkIndex.open(this.read, layout.btreeAddress, layout.chunk, space.dims.slice(1), chunkRows);
        ds.indexLevelCounts = ds.index.levelCounts();
      }
      await ds.restore(written, { readTail: !this.readOnly });
      obj = ds;
    } else {
      const g = new Group(path);
      for (const m of h.messages) {
        if (m.type !== MSG.link) continue;
        const link = decodeLink(new ByteReader(m.body));
        if (link) g.links.push(link);
      }
      obj = g;
      for (const l of g.links) if (!isSoft(l)) await this.load(path === '/' ? `/${l.name}` : `${path}/${l.name}`, l.address);
    }
    // a header written before fur wrote Attribute Info messages gets one when it can be rewritten:
    // without it HDF5 1.10 counts none of its attributes (see messages/attribute-info.ts)
    const uncounted = !this.readOnly && attrs.length > 0 && !h.messages.some((m) => m.type === MSG.attributeInfo);
    obj.header = { address, capacity: h.capacity, continuation: h.continuation, isNew: false, dirty: uncounted };
    obj.attrs = attrs;
    this.objects.set(path, obj);
  }

  private host() {
    return {
      write: (o: number, d: Uint8Array) => this.write(o, d),
      read: this.read,
      allocData: (n: number) => this.alloc.data(n),
      heapMaxBytes: this.heapMaxBytes,
      maxEncodeRows: this.maxEncodeRows,
    };
  }

  private write(offset: number, data: Uint8Array, to: Sink = this.sink): void {
    if (this.readOnly) throw usageError('file', 'opened read-only');
    if (this.failure) throw this.failure;
    if (this.closed) throw usageError('file', 'written after close');
    if (data.length === 0) return;
    this.physicalEnd = Math.max(this.physicalEnd, offset + data.length);
    const p = to.write(offset, data).catch((e) => { this.failure ??= e; });
    this.pending.set(p, to);
    this.unsynced.add(to);
    void p.finally(() => this.pending.delete(p));
  }

  /**
   * Every write issued to `to` so far is acknowledged, and durable when the file is. The sync is
   * asked for at once: it follows the writes before it, so the barrier costs one round trip.
   * Returns a function that waits; calling barrier() and waiting later fixes which writes count.
   */
  private barrier(to: Sink = this.sink): () => Promise<void> {
    // nothing written there since its last barrier: nothing to wait for
    if (!this.unsynced.delete(to)) return async () => { if (this.failure) throw this.failure; };
    const issued = [...this.pending].filter(([, s]) => s === to).map(([p]) => p);
    const done = (this.durable && to.sync ? to.sync() : to.flush()).catch((e) => { this.failure ??= e; });
    return async () => {
      await Promise.all(issued);
      await done;
      if (this.failure) throw this.failure;
    };
  }

  private remember(address: number, bytes: Uint8Array): void {
    this.rememberings++;
    const end = address + bytes.length;
    for (const [a, b] of this.remembered) {
      if (a >= end || address >= a + b.length) continue;
      this.remembered.delete(a);
      this.rememberedBytes -= b.length;
      if (address >= a && end <= a + b.length && bytes.length < b.length) {
        // a write into part of a block (a full node learning its new right sibling): keep the
        // block as it is now. Forgetting it would send every later read of the index (the
        // sidecar's, after each commit) over the network, one node after another. A copy: the
        // old bytes may still be on their way to the server.
        const patched = b.slice();
        patched.set(bytes, address - a);
        this.keep(a, patched);
        return;
      }
    }
    this.keep(address, bytes);
  }

  private keep(address: number, bytes: Uint8Array): void {
    this.remembered.set(address, bytes);
    this.rememberedBytes += bytes.length;
    // the oldest blocks go first: a long capture's index must not grow in memory without bound
    for (const [a, b] of this.remembered) {
      if (this.rememberedBytes <= REMEMBER_MAX_BYTES) break;
      this.remembered.delete(a);
      this.rememberedBytes -= b.length;
    }
  }

  private placeHeader(obj: Obj, msgs: Message[]): void {
    const capacity = messagesSize(msgs) + HEADER_SLACK;
    obj.header.capacity = capacity;
    obj.header.address = this.alloc.meta(headerSize(capacity));
  }

  /** The object a path names, soft links followed. */
  get(path: string): Obj | undefined { return this.objects.get(this.resolve(path)); }
  dataset(path: string): Dataset {
    const o = this.get(path);
    if (!(o instanceof Dataset)) throw usageError(path, 'no such dataset');
    return o;
  }
  /** a dataset whose value lives in its header (writeCompact) */
  compact(path: string): CompactDataset | undefined {
    const o = this.get(path);
    return o instanceof CompactDataset ? o : undefined;
  }
  has(path: string): boolean { return this.objects.has(this.resolve(path)); }
  /** every object path, groups and datasets, in creation/load order (soft links are not objects: see softLinks) */
  paths(): string[] { return [...this.objects.keys()]; }
  isGroup(path: string): boolean { return this.get(path) instanceof Group; }

  /** The path of the object `path` names once every soft link along it is followed (`path` itself when none). */
  resolve(path: string): string {
    let p = normalize(path);
    for (let hops = 0; hops < 32 && !this.objects.has(p); hops++) {
      const parts = p.split('/').filter(Boolean);
      let at = '/';
      let next: string | undefined;
      for (let i = 0; i < parts.length && next === undefined; i++) {
        const g = this.objects.get(at);
        const l = g instanceof Group ? g.links.find((x) => x.name === parts[i]) : undefined;
        if (!l) break;
        if (isSoft(l)) next = [l.target.startsWith('/') ? l.target : `${at}/${l.target}`, ...parts.slice(i + 1)].join('/');
        else at = at === '/' ? `/${parts[i]}` : `${at}/${parts[i]}`;
      }
      if (next === undefined) break;
      p = normalize(next);
    }
    return p;
  }

  /** every soft link: its path and the path it names */
  softLinks(): { path: string; target: string }[] {
    const out: { path: string; target: string }[] = [];
    for (const [path, o] of this.objects) {
      if (o instanceof Group) for (const l of o.links) if (isSoft(l)) out.push({ path: path === '/' ? `/${l.name}` : `${path}/${l.name}`, target: l.target });
    }
    // by path: the same file lists them alike however it was loaded
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Add a soft link at `path` naming `target` (an absolute path, which need not exist yet). */
  softLink(path: string, target: string): void {
    path = normalize(path);
    const [parentPath, name] = parentOf(path);
    const parent = this.objects.get(parentPath) ?? this.createGroup(parentPath);
    if (!(parent instanceof Group)) throw usageError(path, `parent ${parentPath} is a dataset`);
    if (this.objects.has(path) || parent.links.some((l) => l.name === name)) throw usageError(path, 'already exists');
    parent.links.push({ name, target: normalize(target) });
    parent.header.dirty = true;
  }

  /** The path of the object whose header is at `address` (what a reference names), if any. */
  pathAt(address: number): string | undefined {
    for (const [path, o] of this.objects) if (o.header.address === address) return path;
    return undefined;
  }

  /** The address of an object's header: what an object reference holds. */
  addressOf(path: string): number {
    const o = this.get(path);
    if (!o) throw usageError(path, 'no such object to refer to');
    return o.header.address;
  }

  /**
   * Create, or replace the value of, a small dataset kept in its own header (a time, a setting):
   * strings are stored as fixed-length UTF-8, numbers as setAttr stores them. Published by the
   * next commit, like any header change.
   */
  writeCompact(path: string, value: string | number | number[] | { dtype: DtypeSpec; shape?: number[]; data: Uint8Array }): CompactDataset {
    path = normalize(path);
    const plain = typeof value === 'string' ? toPlain(fixedString(value)) : toPlain(value);
    if ('objects' in plain) throw usageError(path, 'a compact dataset holds fixed-size elements only');
    const existing = this.get(path);
    if (existing instanceof CompactDataset) { existing.set(plain.type, plain.shape, plain.data); return existing; }
    if (existing) throw usageError(path, 'already exists and is not a compact dataset');
    const c = new CompactDataset(path, plain.type, plain.shape, plain.data);
    this.placeHeader(c, this.headerMessages(c));
    this.link(path, c);
    return c;
  }
  attributes(path: string): Attribute[] {
    const o = this.get(path);
    if (!o) throw usageError(path, 'no such object');
    return o.attrs;
  }

  private link(path: string, obj: Obj): void {
    const [parentPath, name] = parentOf(path);
    if (this.objects.has(path)) throw usageError(path, 'already exists');
    const parent = this.objects.get(parentPath) ?? this.createGroup(parentPath);
    if (!(parent instanceof Group)) throw usageError(path, `parent ${parentPath} is a dataset`);
    if (parent.links.some((l) => l.name === name)) throw usageError(path, 'already exists');
    parent.links.push({ name, address: obj.header.address });
    parent.header.dirty = true;
    this.objects.set(path, obj);
  }

  createGroup(path: string): Group {
    path = normalize(path);
    const existing = this.objects.get(path);
    if (existing instanceof Group) return existing;
    const g = new Group(path);
    this.placeHeader(g, g.messages());
    this.link(path, g);
    return g;
  }

  createDataset(path: string, o: DatasetOptions): Dataset {
    path = normalize(path);
    const type: Datatype = parseDtype(o.dtype);
    const rank = o.shape.length;
    if (rank < 1 || rank > 8) throw usageError(path, `rank ${rank}: datasets have 1 to 8 dimensions`);
    if (o.shape.some((d, i) => !Number.isInteger(d) || d < 0 || (i > 0 && d === 0))) throw usageError(path, `bad shape [${o.shape}]`);
    const maxshape = (o.maxshape ?? o.shape).map((m, i) => {
      if (m === null || m === UNLIMITED) {
        if (i > 0) throw usageError(path, 'only the first axis may be unlimited');
        return UNLIMITED;
      }
      if (m !== o.shape[i]) throw usageError(path, `axis ${i}: max ${m} differs from size ${o.shape[i]} (only an unlimited first axis can grow)`);
      return m;
    });
    const filters = o.filters ?? [];
    // as libhdf5 does: a Fletcher-32 over heap references would check 16-byte ids, never the data
    if (isVlen(type) && filters.some((f) => f.id === 'fletcher32')) throw usageError(path, 'Fletcher-32 cannot protect variable-length data (it would cover the heap references only)');
    for (const f of filters) {
      if (f.id === 'deflate' && !(Number.isInteger(f.level) && f.level >= 0 && f.level <= 9)) throw usageError(path, `deflate level ${f.level}: use 0-9`);
    }
    const chunked = o.layout === 'chunked' || maxshape[0] === UNLIMITED || filters.length > 0 || o.chunks !== undefined;
    if (o.layout === 'contiguous' && chunked) throw usageError(path, 'contiguous layout cannot grow or be filtered');
    let fill: Uint8Array | undefined;
    if (o.fillValue !== undefined) {
      if (o.fillValue instanceof Uint8Array) fill = o.fillValue;
      else if (isVlen(type) || type.class === 'string') throw usageError(path, 'fill value for strings must be given as bytes');
      else fill = encodeNumbers([o.fillValue], type);
      if (fill.length !== type.size) throw usageError(path, `fill value has ${fill.length} bytes; elements have ${type.size}`);
    }
    let layout: DatasetState['layout'];
    if (chunked) {
      const frame = o.shape.slice(1);
      const chunk = o.chunks ?? defaultChunks(frame, type.size);
      if (maxshape[0] !== UNLIMITED && !o.chunks) chunk[0] = Math.max(1, Math.min(chunk[0], o.shape[0]));
      if (chunk.length !== rank || chunk.some((c, i) => !Number.isInteger(c) || c < 1 || (i > 0 && c > o.shape[i]) || (i === 0 && maxshape[0] !== UNLIMITED && c > Math.max(1, o.shape[0])))) {
        throw usageError(path, `chunk shape [${chunk}] does not fit dataset shape [${o.shape}]`);
      }
      if (product(chunk) * type.size >= 2 ** 32) throw usageError(path, 'chunks must be smaller than 4 GiB');
      layout = { class: 'chunked', btreeAddress: UNDEF_ADDR, chunk, elementSize: type.size };
    } else {
      const size = product(o.shape) * type.size;
      layout = { class: 'contiguous', address: size ? this.alloc.data(size) : UNDEF_ADDR, size };
    }
    const ds = new Dataset(this.host(), { path, type, shape: o.shape, maxshape, filters, fill, layout });
    if (chunked && maxshape[0] === UNLIMITED && o.shape[0] !== 0) throw usageError(path, 'a growable dataset starts empty; append its rows');
    this.placeHeader(ds, ds.messages());
    this.link(path, ds);
    return ds;
  }

  /** Set (or replace) an attribute on a group or dataset. */
  setAttr(path: string, name: string, value: AttrValue): void {
    const obj = this.get(path);
    if (!obj) throw usageError(path, 'no such object for attribute');
    let plain: PlainValue;
    if (typeof value === 'object' && 'references' in value) {
      const objects = value.references.map((paths) => {
        const w = new ByteWriter(8 * paths.length);
        for (const p of paths) w.u64(this.addressOf(p));
        return w.finish();
      });
      plain = { type: { class: 'vlen-ref', size: 16 }, shape: [objects.length], objects, lengths: value.references.map((r) => r.length) };
    } else plain = toPlain(value);
    const attr: Attribute = { name, type: plain.type, shape: plain.shape, data: 'data' in plain ? plain.data : new Uint8Array(16 * plain.objects.length) };
    // variable-length elements go to one heap collection per commit, not one (4 KiB at least) each
    if ('objects' in plain) this.staged.set(attr, { objects: plain.objects, lengths: plain.lengths });
    for (const old of obj.attrs) if (old.name === name) this.staged.delete(old);
    obj.attrs = obj.attrs.filter((a) => a.name !== name).concat(attr);
    obj.header.dirty = true;
  }

  /**
   * Place the variable-length elements of the attributes set since the last commit (strings,
   * references) in global heap collections in the metadata region — they are part of the
   * structure — and point the attributes at them. Written with the commit's data, before any
   * header that names them.
   */
  private placeStaged(): void {
    const all = [...this.staged.values()].flatMap((s) => s.objects);
    if (all.length === 0) { this.staged.clear(); return; }
    const where = new Map<Uint8Array, [number, number]>();
    for (const group of planCollections(all, this.heapMaxBytes)) {
      const heap = encodeCollection(group);
      const addr = this.alloc.meta(heap.length);
      this.write(addr, heap);
      this.remember(addr, heap);
      group.forEach((o, i) => where.set(o, [addr, i + 1]));
    }
    for (const [attr, s] of this.staged) {
      const w = new ByteWriter(16 * s.objects.length);
      s.objects.forEach((o, i) => { const [addr, index] = where.get(o)!; encodeHeapId(w, s.lengths[i]!, addr, index); });
      attr.data = w.finish();
    }
    this.staged.clear();
  }

  private headerMessages(obj: Obj): Message[] {
    return [
      ...obj.messages(),
      { type: MSG.attributeInfo, body: encodeAttributeInfo().finish() },
      ...obj.attrs.map((a) => ({ type: MSG.attribute, body: encodeAttribute(a).finish() })),
    ];
  }

  /**
   * Publish everything appended so far (partial chunks included unless `complete` is set).
   * `publishLast` names a dataset whose extent becomes visible only after all others, so it
   * never runs ahead of the datasets that describe its rows.
   */
  async commit(opts: CommitOptions = {}): Promise<void> {
    if (this.closed) throw usageError('file', 'already closed');
    // One commit at a time, in order: a commit seals only once the previous one is published.
    const previous = this.publishing;
    let published!: () => void;
    this.publishing = new Promise<void>((resolve) => { published = resolve; });
    try {
      await previous;
      await this.commitNow(opts);
    } finally {
      published();
    }
  }

  /**
   * Everything a commit writes is decided when it seals, synchronously, before its first barrier.
   * `onSealed` then tells the caller that appending may go on: new rows land in space past all
   * this commit publishes and wait for the next commit, while this one runs its barriers. Its
   * data barrier is asked for before that, so it does not wait for the new rows; its later
   * barriers wait for them too unless the file has a second handle for metadata (metaSink).
   */
  private async commitNow(opts: CommitOptions): Promise<void> {
    if (this.failure) throw this.failure;
    const datasets = [...this.objects.values()].filter((o): o is Dataset => o instanceof Dataset);
    // the capture's last commit (trim) publishes a chunk filled in place where it is
    if (!opts.complete) for (const d of datasets) d.flushTail(opts.trim);
    await Promise.all(datasets.map((d) => d.settle()));

    this.placeStaged();
    // plan: allocate index nodes and continuation blocks, so the EOF is final before phase A ends
    const planned = datasets.filter((d) => d.index?.dirty);
    for (const d of planned) d.index!.plan((n) => this.alloc.meta(n));
    for (const d of datasets) d.prepareCommit(opts.complete);
    const dirty = [...this.objects.values()].filter((o) => o.header.dirty);
    const encoded = dirty.map((o) => {
      const msgs = this.headerMessages(o);
      return { obj: o, msgs, enc: encodeHeader(msgs, o.header.capacity, (n) => this.alloc.meta(n), o.header.continuation) };
    });
    const end = this.alloc.end;
    let eof = this.statedEof;
    if (opts.trim) eof = end;
    else if (eof < end) eof = end + this.headroom(end);
    // index nodes are encoded now, while they hold exactly this commit's chunks
    const indexWrites = planned.flatMap((d) => {
      const w = d.index!.writes({ levelCounts: d.indexLevelCounts });
      d.indexLevelCounts = d.index!.levelCounts();
      return w;
    });
    const meta = (offset: number, data: Uint8Array) => this.write(offset, data, this.meta);

    // A: raw data is on its way already; make the file reach the new EOF (on the data handle:
    // later rows may land on that byte, and one handle keeps overlapping writes in order)
    if (this.physicalEnd < eof) this.write(eof - 1, new Uint8Array(1));
    // the space record goes with the data: durable before any structure of this commit is written
    // (a commit that changes nothing writes nothing: a file opened only to be read stays as it is)
    const changed = this.unsynced.size > 0 || encoded.length > 0 || indexWrites.length > 0 || eof !== this.statedEof;
    const record = this.space !== undefined && changed;
    const seq = record ? this.space!.seq + 1 : this.space?.seq ?? 0;
    const sealedMeta = this.alloc.metaState();
    if (record) this.write(recordAddress(this.space!.area, seq), encodeRecord(this.spaceRecord(seq, end, sealedMeta)));
    const root = this.objects.get('/')!;
    const superblock = () => meta(0, encodeSuperblock({ eof, rootAddress: root.header.address }));
    // An EOF that only shrinks (the trim at close) goes out now, with the data barrier, at no
    // round trip of its own: everything the committed structures and B and C point to lies below
    // it, and the headroom it cuts is still there until the file is truncated. Stated this early,
    // the readers' grace before that truncation (see close) runs while B and C do.
    const shrinks = !root.header.isNew && eof < this.statedEof;
    if (shrinks) superblock();
    const dataBarrier = this.barrier();
    const shrinkBarrier = shrinks && this.meta !== this.sink ? this.barrier(this.meta) : undefined;
    opts.onSealed?.();
    await dataBarrier();
    if (shrinkBarrier) await shrinkBarrier();
    if (shrinks) {
      this.statedEof = eof;
      this.eofStatedAt = Date.now();
    }

    // A': the superblock's EOF, before B: B rewrites the rightmost index nodes in place, and their
    // entries (a filtered partial chunk re-encoded to new space) may point past the old EOF,
    // which libhdf5 refuses to read ("addr overflow"). A new file's superblock names a root
    // header written in B, so it follows B instead.
    if (!root.header.isNew && eof > this.statedEof) {
      superblock();
      await this.barrier(this.meta)();
      this.statedEof = eof;
      this.eofStatedAt = Date.now();
    }

    // B: structures nothing committed points to yet, except the rightmost index nodes
    for (const w of indexWrites) {
      meta(w.address, w.bytes);
      this.remember(w.address, w.bytes);
    }
    for (const { obj, enc } of encoded) {
      if (enc.continuation && enc.continuation.address !== obj.header.continuation?.address) meta(enc.continuation.address, enc.continuation.bytes);
      if (obj.header.isNew) meta(obj.header.address, enc.chunk0);
    }
    const statedHere = root.header.isNew;
    if (statedHere) superblock();
    opts.onStructured?.();
    await this.barrier(this.meta)();
    if (statedHere) this.eofStatedAt = Date.now();
    this.statedEof = eof;

    // C: publish
    const publish = encoded.filter(({ obj }) => !obj.header.isNew && obj !== opts.publishLast);
    for (const { obj, enc } of publish) meta(obj.header.address, enc.chunk0);
    await this.barrier(this.meta)();
    const last = encoded.find(({ obj }) => obj === opts.publishLast && !obj.header.isNew);
    if (last) { meta(last.obj.header.address, last.enc.chunk0); await this.barrier(this.meta)(); }

    for (const { obj, enc, msgs } of encoded) {
      obj.header.continuation = enc.continuation;
      obj.header.isNew = false;
      // a header changed while this commit published (an attribute, or a compact value, set as the
      // next batch was appended) is not what this commit wrote: it stays dirty for the next one
      obj.header.dirty = !sameMessages(msgs, this.headerMessages(obj));
    }
    for (const d of datasets) d.published();
    if (record) this.space = { ...this.space!, seq, prevEnd: end, prevMeta: sealedMeta };
  }

  /** where every structure reachable from the objects lies: headers, continuations, attribute heaps, index nodes */
  private structureAddresses(): number[] {
    const out: number[] = [];
    for (const o of this.objects.values()) {
      out.push(o.header.address);
      if (o.header.continuation) out.push(o.header.continuation.address);
      for (const a of o.attrs) {
        if (a.type.class !== 'vlen-str') continue;
        const r = new ByteReader(a.data);
        for (let at = 4; at + 12 <= a.data.length; at += 16) { r.pos = at; out.push(r.u64()); }
      }
      if (o instanceof Dataset && o.index) out.push(...o.index.nodeAddresses());
    }
    return out;
  }

  /** the space record of the commit being sealed: every growable dataset's state before and after it */
  private spaceRecord(seq: number, end: number, meta: SpaceRecord['meta']): SpaceRecord {
    const datasets: SpaceRecord['datasets'] = [];
    for (const o of this.objects.values()) {
      const s = o instanceof Dataset ? o.space() : undefined;
      if (s) datasets.push({ header: o.header.address, ...s });
    }
    return { seq, end, prevEnd: this.space!.prevEnd, meta, prevMeta: this.space!.prevMeta, datasets };
  }

  /** Where every stored chunk of a dataset is (offsets in elements), for chunk indexes and range reads. */
  async chunkRefs(path: string): Promise<{ offset: number[]; address: number; size: number }[]> {
    if (this.compact(path)) return []; // its value is in its header
    const ds = this.dataset(path);
    if (ds.contiguous) {
      return ds.contiguous.size && ds.contiguous.address !== UNDEF_ADDR ? [{ offset: ds.shape.map(() => 0), ...ds.contiguous }] : [];
    }
    const all = await collectChunks(this.readKept, ds.index!.root(), ds.chunk!.length);
    return [...all.values()].map((e) => ({ offset: e.offset, address: e.address, size: e.size }));
  }

  async contiguousExtent(path: string): Promise<{ address: number; size: number } | undefined> {
    return this.dataset(path).contiguous;
  }

  /** An attribute's value as JSON-friendly JavaScript: numbers (or arrays), strings, or undefined for types fur does not decode. */
  async readAttribute(a: Attribute): Promise<unknown> {
    const t = a.type;
    const staged = this.staged.get(a);
    if (staged) {
      const values = staged.objects.map((o) => (t.class === 'vlen-str' ? Buffer.from(o).toString('utf8')
        : Array.from({ length: o.length / 8 }, (_, i) => this.pathAt(new ByteReader(o, 8 * i).u64()))));
      return a.shape.length === 0 ? values[0] : values;
    }
    const count = a.shape.reduce((x, y) => x * y, 1);
    const v = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    const values: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const o = i * t.size;
      if (t.class === 'int') {
        const le = !t.bigEndian;
        values.push(t.size === 1 ? (t.signed ? v.getInt8(o) : v.getUint8(o)) : t.size === 2 ? (t.signed ? v.getInt16(o, le) : v.getUint16(o, le))
          : t.size === 4 ? (t.signed ? v.getInt32(o, le) : v.getUint32(o, le)) : Number(t.signed ? v.getBigInt64(o, le) : v.getBigUint64(o, le)));
      } else if (t.class === 'float') {
        values.push(t.size === 8 ? v.getFloat64(o, !t.bigEndian) : t.size === 4 ? v.getFloat32(o, !t.bigEndian) : undefined);
      } else if (t.class === 'string') {
        values.push(Buffer.from(a.data.subarray(o, o + t.size)).toString('utf8').replace(/\0+$/, ''));
      } else if (t.class === 'vlen-str' || t.class === 'vlen-ref') {
        const len = v.getUint32(o, true);
        const addr = v.getUint32(o + 4, true) + v.getUint32(o + 8, true) * 0x100000000;
        const idx = v.getUint32(o + 12, true);
        const head = await this.readKept(addr, 16);
        const size = new DataView(head.buffer, head.byteOffset).getUint32(8, true);
        const obj = decodeCollection(await this.readKept(addr, size), addr).get(idx);
        if (t.class === 'vlen-str') values.push(obj ? Buffer.from(obj.subarray(0, len)).toString('utf8') : undefined);
        else {
          // object references, as the paths of the objects they name
          const refs = obj ? new ByteReader(obj) : undefined;
          values.push(Array.from({ length: refs ? len : 0 }, () => this.pathAt(refs!.u64())));
        }
      } else return undefined;
    }
    return a.shape.length === 0 ? values[0] : values;
  }

  /**
   * Commit what is pending, trim the EOF headroom, and close; `sync` makes the final state durable
   * first. `trimGraceMs`: for a file readers may be opening while it closes. The headroom past the
   * data is cut off last, after the superblock stating the smaller EOF; a reader that read the
   * previous superblock just before must still find the file at least that long when it checks
   * the size a moment later, or it refuses the file as truncated, so the cut waits until this
   * long after the new superblock was confirmed (the rest of the final commit counts towards
   * it). `discard`: close without committing — what was added since the last commit stays
   * unpublished (space past the EOF a reopening writer reuses).
   */
  async close(opts: { sync?: boolean; trimGraceMs?: number; discard?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    if (this.readOnly || opts.discard) { this.closed = true; await this.closeSinks(); return; }
    let metaClosed: Promise<void> | undefined;
    let dataClosed: Promise<void> | undefined;
    try {
      if (!this.failure) {
        await this.commit({ trim: true });
        // nothing goes through the metadata handle any more: close it while the data handle trims
        if (this.meta !== this.sink) {
          metaClosed = this.meta.close();
          // awaited in the finally below; until then a failure must not count as unhandled
          metaClosed.catch(() => undefined);
        }
        // the headroom past the data is no longer needed once nothing grows
        if (this.sink.truncate && this.physicalEnd > this.statedEof) {
          const wait = (opts.trimGraceMs ?? 0) - (Date.now() - this.eofStatedAt);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          // one round trip for the cut, its sync and the close where the sink can pipeline them
          if (this.sink.truncateAndClose) dataClosed = this.sink.truncateAndClose(this.statedEof, opts.sync || this.durable);
          else await this.sink.truncate(this.statedEof);
        }
        if (!dataClosed && (opts.sync || this.durable) && this.sink.sync) await this.sink.sync();
      }
    } finally {
      this.closed = true;
      await this.closeSinks(metaClosed, dataClosed);
    }
    if (this.failure) throw this.failure;
  }

  /** Close both handles at once (independent requests), the metadata one unless already closing. */
  private async closeSinks(metaClosed?: Promise<void>, dataClosed?: Promise<void>): Promise<void> {
    const closes = [dataClosed ?? this.sink.close()];
    if (this.meta !== this.sink) closes.push(metaClosed ?? this.meta.close());
    const results = await Promise.allSettled(closes);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }
}

function sameMessages(a: Message[], b: Message[]): boolean {
  return a.length === b.length && a.every((m, i) => m.type === b[i]!.type && Buffer.compare(m.body, b[i]!.body) === 0);
}

export { Dataset, Group };

/** trimGraceMs for files that readers follow while they grow (see H5File.close) */
export const LIVE_TRIM_GRACE_MS = 250;
