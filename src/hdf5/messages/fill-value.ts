/** Fill value message (0x0005), version 3. */
import { ByteReader, ByteWriter } from '../bytes.js';

export type AllocTime = 'early' | 'late' | 'incremental';

export interface FillValue {
  alloc: AllocTime;
  /** raw bytes of one element; undefined = library default (zeros) */
  value?: Uint8Array;
}

const ALLOC: Record<AllocTime, number> = { early: 1, late: 2, incremental: 3 };

export function encodeFillValue(f: FillValue, w = new ByteWriter()): ByteWriter {
  // fill write time 2 = "if set by user": readers synthesize missing chunks from the value
  let flags = ALLOC[f.alloc] | (2 << 2);
  if (f.value) flags |= 0x20;
  w.u8(3).u8(flags);
  if (f.value) w.u32(f.value.length).bytes(f.value);
  return w;
}

export function decodeFillValue(r: ByteReader): FillValue {
  const version = r.u8();
  if (version !== 3) {
    // versions 1-2: alloc time, write time, defined, [size, value]
    const alloc = r.u8(); r.u8(); const defined = r.u8();
    let value: Uint8Array | undefined;
    if (defined || version === 1) { const n = r.u32(); if (n) value = r.bytes(n).slice(); }
    return { alloc: alloc === 1 ? 'early' : alloc === 2 ? 'late' : 'incremental', value };
  }
  const flags = r.u8();
  const alloc = flags & 3;
  let value: Uint8Array | undefined;
  if (flags & 0x20) { const n = r.u32(); value = r.bytes(n).slice(); }
  return { alloc: alloc === 1 ? 'early' : alloc === 2 ? 'late' : 'incremental', value };
}
