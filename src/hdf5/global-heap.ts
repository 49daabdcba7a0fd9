/**
 * Global heap collections ("GCOL", version 1): where variable-length elements (strings, whole
 * files such as JPEG frames) live. fur writes each batch's objects into fresh collections and
 * never modifies one afterwards, so a collection is written once, before anything points at it.
 */
import { ByteReader, ByteWriter, pad8 } from './bytes.js';
import { formatError } from './errors.js';

export const MIN_COLLECTION = 4096; // readers fetch 4 KiB speculatively: never write less
export const MAX_OBJECTS = 0xffff;
const OBJ_HDR = 16;

export function collectionSize(objects: Uint8Array[]): number {
  let n = 16;
  for (const o of objects) n += OBJ_HDR + pad8(o.length);
  return Math.max(n, MIN_COLLECTION);
}

/** Encode objects as indices 1..n; the free remainder becomes object 0 (its size includes its own header). */
export function encodeCollection(objects: Uint8Array[]): Uint8Array {
  const total = collectionSize(objects);
  const w = new ByteWriter(total);
  w.ascii('GCOL').u8(1).zeros(3).u64(total);
  objects.forEach((o, i) => {
    w.u16(i + 1).u16(1).u32(0).u64(o.length).bytes(o).zeros(pad8(o.length) - o.length);
  });
  const free = total - w.pos;
  if (free >= OBJ_HDR) w.u16(0).u16(0).u32(0).u64(free).zeros(free - OBJ_HDR);
  else w.zeros(free);
  return w.finish();
}

/** Split objects into groups that each fit one collection of at most `maxBytes` (a lone larger object gets its own). */
export function planCollections(objects: Uint8Array[], maxBytes: number): Uint8Array[][] {
  const groups: Uint8Array[][] = [];
  let cur: Uint8Array[] = [];
  let size = 16;
  for (const o of objects) {
    const need = OBJ_HDR + pad8(o.length);
    if (cur.length && (size + need > maxBytes || cur.length >= MAX_OBJECTS)) {
      groups.push(cur); cur = []; size = 16;
    }
    cur.push(o); size += need;
  }
  if (cur.length) groups.push(cur);
  return groups;
}

export function decodeCollection(b: Uint8Array, address: number): Map<number, Uint8Array> {
  const r = new ByteReader(b, 0, `global heap at ${address}`);
  if (r.ascii(4) !== 'GCOL') throw formatError('global heap', `no GCOL signature at ${address}`);
  r.u8(); r.skip(3);
  const total = r.u64();
  const out = new Map<number, Uint8Array>();
  while (r.pos + OBJ_HDR <= Math.min(total, b.length)) {
    const idx = r.u16(); r.u16(); r.u32();
    const size = r.u64();
    if (idx === 0) break;
    out.set(idx, r.bytes(size).slice());
    r.skip(pad8(size) - size);
  }
  return out;
}

/** A 16-byte vlen element: length, collection address, object index. */
export function encodeHeapId(w: ByteWriter, length: number, address: number, index: number): void {
  w.u32(length).u64(address).u32(index);
}
