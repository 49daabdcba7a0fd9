/**
 * The space record: where a writer that reopens a file may put new bytes.
 *
 * HDF5 itself says nothing about which bytes below the EOF are in use: the EOF includes headroom
 * (see FileOptions.eofHeadroom), a crashed commit leaves data nothing points to yet, and the
 * metadata region's free space is not written down anywhere. Without a record a reopening writer
 * must start after the EOF and open a new metadata region, and every interruption leaves that
 * much behind. With one, it continues where the last commit ended.
 *
 * The record sits at the start of the metadata region, right after the superblock, in two copies
 * written in turn (a torn write leaves the other). No HDF5 structure points to it; readers never
 * see it. Each commit writes it with its data, before its data barrier, so it is durable before
 * any structure of that commit is written. It describes the commit being made and the one before,
 * so a reopening writer knows what to undo when the commit never published (see H5File.open).
 */
import { ByteReader, ByteWriter, UNDEF_ADDR } from './bytes.js';
import { lookup3 } from './checksum.js';
import type { ChunkEntry } from './chunk-index.js';

/** bytes of one copy; the record area is twice this */
export const RECORD_BYTES = 4096;
export const RECORD_AREA = 2 * RECORD_BYTES;
const MAGIC = 'FURS';
const VERSION = 1;
/** a record whose datasets did not fit: reopening falls back to starting after the EOF */
const FLAG_INCOMPLETE = 1;

/** A dataset's state as one commit publishes it. */
export interface DatasetState {
  /** rows published */
  rows: number;
  /** entries of the last chunk row when it is partial (where its published copy lies), else none */
  tail: ChunkEntry[];
  /** where the partial chunk row's rows are written as they arrive (a checksummed-only dataset) */
  inPlace?: { row: number; address: number };
}

export interface DatasetSpace {
  /** object header address: which dataset this is */
  header: number;
  /** the commit this record belongs to */
  next: DatasetState;
  /** the commit before it (what a reopening writer goes back to if `next` never published) */
  prev: DatasetState;
  /** the pair of tail slots (see Dataset): two slots of `perRow` chunks of `chunkSize` bytes */
  slots?: { address: number; chunkSize: number };
}

export interface SpaceRecord {
  seq: number;
  /** end of everything allocated once this commit sealed */
  end: number;
  /** the same for the commit before */
  prevEnd: number;
  meta: { cursor: number; end: number; regionSize: number };
  /** the same for the commit before */
  prevMeta: { cursor: number; end: number; regionSize: number };
  datasets: DatasetSpace[];
  /** true when the datasets did not fit: the record only says that nothing may be reused */
  incomplete?: boolean;
}

/** where copy `seq % 2` of the record goes */
export function recordAddress(area: number, seq: number): number {
  return area + (seq % 2) * RECORD_BYTES;
}

function putState(w: ByteWriter, s: DatasetState): void {
  w.u64(s.rows).u32(s.tail.length);
  for (const e of s.tail) w.u64(e.address).u32(e.size).u32(e.mask);
  w.u64(s.inPlace?.row ?? UNDEF_ADDR).u64(s.inPlace?.address ?? UNDEF_ADDR);
}

function getState(r: ByteReader): DatasetState {
  const rows = r.u64();
  const n = r.u32();
  const tail: ChunkEntry[] = [];
  for (let i = 0; i < n; i++) tail.push({ address: r.u64(), size: r.u32(), mask: r.u32() });
  const row = r.u64();
  const address = r.u64();
  return { rows, tail, inPlace: address === UNDEF_ADDR ? undefined : { row, address } };
}

export function encodeRecord(rec: SpaceRecord): Uint8Array {
  const body = (datasets: DatasetSpace[], flags: number) => {
    const w = new ByteWriter(512);
    w.ascii(MAGIC).u8(VERSION).u8(flags).u16(0).u32(0); // length, patched below
    w.u64(rec.seq).u64(rec.end).u64(rec.prevEnd);
    for (const m of [rec.meta, rec.prevMeta]) w.u64(m.cursor).u64(m.end).u64(m.regionSize);
    w.u32(datasets.length);
    for (const d of datasets) {
      w.u64(d.header);
      putState(w, d.next);
      putState(w, d.prev);
      w.u64(d.slots?.address ?? UNDEF_ADDR).u64(d.slots?.chunkSize ?? 0);
    }
    w.setU32(8, w.pos + 4);
    w.u32(lookup3(w.finish()));
    return w.finish();
  };
  const full = body(rec.datasets, 0);
  return full.length <= RECORD_BYTES ? full : body([], FLAG_INCOMPLETE);
}

export function decodeRecord(b: Uint8Array): SpaceRecord | undefined {
  try {
    return decode(b);
  } catch {
    return undefined; // not a record (an older file's structures, or bytes never written)
  }
}

function decode(b: Uint8Array): SpaceRecord | undefined {
  if (b.length < 16 || String.fromCharCode(...b.subarray(0, 4)) !== MAGIC || b[4] !== VERSION) return undefined;
  const r = new ByteReader(b, 8, 'space record');
  const length = r.u32();
  if (length < 16 || length > b.length) return undefined;
  const stored = new DataView(b.buffer, b.byteOffset + length - 4, 4).getUint32(0, true);
  if (lookup3(b.subarray(0, length - 4)) !== stored) return undefined;
  const seq = r.u64();
  const end = r.u64();
  const prevEnd = r.u64();
  const meta = { cursor: r.u64(), end: r.u64(), regionSize: r.u64() };
  const prevMeta = { cursor: r.u64(), end: r.u64(), regionSize: r.u64() };
  const n = r.u32();
  const datasets: DatasetSpace[] = [];
  for (let i = 0; i < n; i++) {
    const header = r.u64();
    const next = getState(r);
    const prev = getState(r);
    const address = r.u64();
    const chunkSize = r.u64();
    datasets.push({ header, next, prev, slots: address === UNDEF_ADDR ? undefined : { address, chunkSize } });
  }
  return { seq, end, prevEnd, meta, prevMeta, datasets, incomplete: (b[5]! & FLAG_INCOMPLETE) !== 0 };
}

/** The newer of the two copies that are intact, if any (`area`: the bytes after the superblock). */
export function latestRecord(area: Uint8Array): SpaceRecord | undefined {
  const copies = [decodeRecord(area.subarray(0, RECORD_BYTES)), decodeRecord(area.subarray(RECORD_BYTES, RECORD_AREA))];
  return copies.reduce<SpaceRecord | undefined>((best, c) => (c && (!best || c.seq > best.seq) ? c : best), undefined);
}
