/**
 * Data layout message (0x0008), version 3: compact (the elements in the message itself),
 * contiguous storage, or chunks indexed by a v1 B-tree. Version 3 is read by every HDF5 library
 * since 1.6 and by pure readers (jsfive, h5wasm); see docs/hdf5-layout.md for why fur indexes
 * chunks with a v1 B-tree.
 */
import { ByteReader, ByteWriter } from '../bytes.js';
import { formatError } from '../errors.js';

export type Layout =
  | { class: 'compact'; data: Uint8Array }
  | { class: 'contiguous'; address: number; size: number }
  | { class: 'chunked'; btreeAddress: number; chunk: number[]; elementSize: number };

export function encodeLayout(l: Layout, w = new ByteWriter()): ByteWriter {
  w.u8(3);
  if (l.class === 'compact') {
    w.u8(0).u16(l.data.length).bytes(l.data);
  } else if (l.class === 'contiguous') {
    w.u8(1).u64(l.address).u64(l.size);
  } else {
    // dimensionality is rank + 1: the last "dimension" is the element size in bytes
    w.u8(2).u8(l.chunk.length + 1).u64(l.btreeAddress);
    for (const c of l.chunk) w.u32(c);
    w.u32(l.elementSize);
  }
  return w;
}

export function decodeLayout(r: ByteReader): Layout {
  const version = r.u8();
  if (version !== 3) throw formatError('layout', `version ${version} (fur reads version 3)`);
  const cls = r.u8();
  if (cls === 0) return { class: 'compact', data: r.bytes(r.u16()).slice() };
  if (cls === 1) return { class: 'contiguous', address: r.u64(), size: r.u64() };
  if (cls === 2) {
    const nd = r.u8();
    const btreeAddress = r.u64();
    const dims: number[] = [];
    for (let i = 0; i < nd; i++) dims.push(r.u32());
    return { class: 'chunked', btreeAddress, chunk: dims.slice(0, -1), elementSize: dims[nd - 1] };
  }
  throw formatError('layout', `class ${cls}`);
}
