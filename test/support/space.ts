/**
 * Where the bytes of a file fur wrote go: every extent a reader can reach from the superblock
 * (object headers and their continuations, chunk index nodes, chunks, global heap collections),
 * the space record and the metadata region — and what is left over. The bound the append writer
 * keeps (docs/hdf5-layout.md, "Space"): a file is no larger than its data, its metadata region
 * and two chunks of its largest filtered dataset.
 */
import { ByteReader, UNDEF_ADDR } from '../../src/hdf5/bytes.js';
import { decodeNode, nodeSize } from '../../src/hdf5/btree-v1.js';
import { H5File, MemorySink, type RandomAccess } from '../../src/hdf5/index.js';
import { CompactDataset } from '../../src/hdf5/compact.js';
import { Dataset } from '../../src/hdf5/dataset.js';
import { headerSize } from '../../src/hdf5/object-header.js';
import { latestRecord, RECORD_AREA } from '../../src/hdf5/space-record.js';
import { SUPERBLOCK_SIZE } from '../../src/hdf5/superblock.js';

export interface SpaceAccount {
  /** bytes in the file */
  size: number;
  /** stored chunks (as their index lists them) and global heap collections */
  data: number;
  /** of which global heap collections (variable-length elements: frame names, opaque frames) */
  heaps: number;
  /**
   * values of compact datasets (start and end times): inside their object headers, so counted
   * as structure here, but as raw data by h5stat
   */
  compact: number;
  /** object headers, continuation blocks, index nodes, the superblock */
  structure: number;
  /** the metadata regions (structure lies in them), the space record's area included */
  metaRegion: number;
  /** bytes neither data nor in a metadata region: dead copies, lost space */
  dead: number;
  /**
   * bytes of the metadata region in use (below its cursor, as the space record says) that no
   * structure takes, beyond the 8-byte alignment of each: metadata lost (undefined without a
   * space record)
   */
  metaLost?: number;
  /** the largest chunk a filtered growable dataset can take, with its filters' overhead: one tail slot */
  chunk: number;
  /** the bound: data + metadata region + two chunks */
  bound: number;
  /** where the dead bytes are */
  gaps: Extent[];
}

interface Extent { at: number; size: number }

/** Account for every byte of a file fur wrote (its bytes, or a sink holding them). */
export async function spaceAccount(file: Uint8Array | RandomAccess): Promise<SpaceAccount> {
  let sink: RandomAccess;
  if (file instanceof Uint8Array) {
    const mem = new MemorySink();
    await mem.write(0, file);
    sink = mem;
  } else sink = file;
  const size = await sink.size();
  const read = (o: number, n: number) => sink.read(o, n);
  const f = await H5File.open(sink, { readOnly: true });
  const data: Extent[] = [];
  const structure: Extent[] = [{ at: 0, size: SUPERBLOCK_SIZE }];
  const heaps = new Set<number>();
  /** attribute strings: heap collections in the metadata region */
  const attrHeaps = new Set<number>();
  let chunk = 0;
  let compact = 0;
  for (const path of f.paths()) {
    const obj = f.get(path)!;
    structure.push({ at: obj.header.address, size: headerSize(obj.header.capacity) });
    if (obj.header.continuation) structure.push({ at: obj.header.continuation.address, size: obj.header.continuation.bytes.length });
    for (const a of obj.attrs) if (a.type.class === 'vlen-str') for (const id of heapIds(a.data)) attrHeaps.add(id);
    if (obj instanceof CompactDataset) compact += obj.data.length;
    if (!(obj instanceof Dataset)) continue;
    if (obj.contiguous) {
      if (obj.contiguous.address !== UNDEF_ADDR) data.push({ at: obj.contiguous.address, size: obj.contiguous.size });
    } else {
      const rank = obj.chunk!.length;
      const visit = async (addr: number): Promise<void> => {
        structure.push({ at: addr, size: nodeSize(rank) });
        const n = decodeNode(await read(addr, nodeSize(rank)), rank, addr);
        if (n.level > 0) for (const c of n.children) await visit(c);
        else n.children.forEach((c, i) => data.push({ at: c, size: n.keys[i]!.size }));
      };
      const root = obj.index!.root();
      if (root !== UNDEF_ADDR) await visit(root);
      if (obj.filters.length && obj.growable) {
        let c = obj.chunk!.reduce((x, y) => x * y, 1) * obj.type.size;
        for (const fl of obj.filters) c += fl.id === 'fletcher32' ? 4 : fl.id === 'deflate' ? (c >>> 12) + (c >>> 14) + 19 : 0;
        chunk = Math.max(chunk, c);
      }
    }
    if (obj.type.class === 'vlen-str' || obj.type.class === 'vlen-bytes') {
      for (const id of heapIds(await obj.read(0, obj.shape[0]))) heaps.add(id);
    }
  }
  const collection = async (at: number): Promise<Extent> => {
    const head = await read(at, 16);
    return { at, size: new DataView(head.buffer, head.byteOffset).getUint32(8, true) };
  };
  const heapExtents: Extent[] = [];
  for (const at of heaps) heapExtents.push(await collection(at));
  data.push(...heapExtents);
  for (const at of attrHeaps) structure.push(await collection(at));
  await f.close();

  // the metadata regions: the first one from the superblock to the first byte of data; later
  // ones as the space record names the one in use
  const regions: Extent[] = [];
  const firstData = Math.min(size, ...data.map((e) => e.at));
  regions.push({ at: 0, size: firstData });
  const rec = latestRecord(await read(SUPERBLOCK_SIZE, RECORD_AREA));
  if (rec && rec.meta.end - rec.meta.regionSize > firstData) regions.push({ at: rec.meta.end - rec.meta.regionSize, size: rec.meta.regionSize });
  const metaRegion = regions.reduce((n, r) => n + r.size, 0);
  let metaLost: number | undefined;
  if (rec) {
    // the region in use, from its start (the first one: after the superblock) to its cursor
    const start = rec.meta.end - rec.meta.regionSize;
    const inUse = { at: start, size: rec.meta.cursor - start };
    const inside = [...structure, { at: SUPERBLOCK_SIZE, size: RECORD_AREA }].filter((x) => x.at >= inUse.at && x.at < inUse.at + inUse.size);
    const padded = inside.map((x) => ({ at: x.at, size: (x.size + 7) & ~7 }));
    metaLost = gaps(padded, inUse.at + inUse.size, inUse.at).reduce((n, g) => n + g.size, 0);
  }
  const dataBytes = union(data);
  const outsideRegions = union([...data, ...structure, ...regions]);
  return {
    size,
    data: dataBytes,
    heaps: union(heapExtents),
    compact,
    structure: union(structure),
    metaRegion,
    dead: size - outsideRegions,
    chunk,
    bound: dataBytes + metaRegion + 2 * chunk,
    gaps: gaps([...data, ...structure, ...regions], size),
    metaLost,
  };
}

/** the heap collection addresses of 16-byte vlen elements */
function heapIds(ids: Uint8Array): number[] {
  const out: number[] = [];
  const r = new ByteReader(ids);
  for (let o = 0; o + 16 <= ids.length; o += 16) {
    r.pos = o + 4;
    const at = r.u64();
    if (at !== 0 && at !== UNDEF_ADDR) out.push(at);
  }
  return out;
}

/** the extents of [from, size) no extent covers */
function gaps(xs: Extent[], size: number, from = 0): Extent[] {
  const out: Extent[] = [];
  let end = from;
  for (const x of [...xs].sort((a, b) => a.at - b.at)) {
    if (x.at > end) out.push({ at: end, size: x.at - end });
    end = Math.max(end, x.at + x.size);
  }
  if (size > end) out.push({ at: end, size: size - end });
  return out;
}

/** bytes covered by a set of extents, overlaps counted once */
function union(xs: Extent[]): number {
  const sorted = xs.filter((x) => x.size > 0).sort((a, b) => a.at - b.at);
  let total = 0;
  let end = -1;
  for (const x of sorted) {
    const lo = Math.max(x.at, end);
    const hi = x.at + x.size;
    if (hi > lo) { total += hi - lo; end = hi; }
  }
  return total;
}
