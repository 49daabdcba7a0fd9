/** Dataspace message (0x0001), version 2: scalar or simple, with optional max dims. */
import { ByteReader, ByteWriter, UNDEF_ADDR } from '../bytes.js';
import { formatError } from '../errors.js';

export const UNLIMITED = -1;

export interface Dataspace {
  /** empty = scalar */
  dims: number[];
  /** same rank as dims; UNLIMITED for an unlimited dimension; undefined = fixed at dims */
  maxdims?: number[];
}

export function encodeDataspace(s: Dataspace, w = new ByteWriter()): ByteWriter {
  const rank = s.dims.length;
  const hasMax = s.maxdims !== undefined && rank > 0;
  w.u8(2).u8(rank).u8(hasMax ? 1 : 0).u8(rank === 0 ? 0 : 1);
  for (const d of s.dims) w.u64(d);
  if (hasMax) for (const m of s.maxdims!) w.u64(m === UNLIMITED ? UNDEF_ADDR : m);
  return w;
}

export function decodeDataspace(r: ByteReader): Dataspace {
  const version = r.u8();
  const rank = r.u8();
  const flags = r.u8();
  if (version === 1) { r.u8(); r.u32(); } else if (version === 2) r.u8();
  else throw formatError('dataspace', `version ${version}`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(r.u64());
  let maxdims: number[] | undefined;
  if (flags & 1) {
    maxdims = [];
    for (let i = 0; i < rank; i++) { const m = r.u64(); maxdims.push(m === UNDEF_ADDR ? UNLIMITED : m); }
  }
  return { dims, maxdims };
}
