/**
 * Writes .npy files: the simulated camera's npy output and the reader's test fixtures
 * (including the variants the reader must handle or refuse: big-endian, Fortran order, v2/v3).
 */
import { itemsize, swapBytes, type NumericDtype } from '../frame.js';

export interface NpyWriteOptions {
  bigEndian?: boolean;
  fortranOrder?: boolean;
  version?: 1 | 2 | 3;
}

const CODES: Record<NumericDtype, string> = {
  int8: 'i1', uint8: 'u1', int16: 'i2', uint16: 'u2', int32: 'i4', uint32: 'u4', int64: 'i8', uint64: 'u8',
  float16: 'f2', float32: 'f4', float64: 'f8',
};

/** `data` is little-endian C-order; the array shape includes any frame axis. */
export function encodeNpy(dtype: NumericDtype, shape: readonly number[], data: Uint8Array, opts: NpyWriteOptions = {}): Uint8Array {
  const size = itemsize(dtype);
  const order = size === 1 ? '|' : opts.bigEndian ? '>' : '<';
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${order}${CODES[dtype]}', 'fortran_order': ${opts.fortranOrder ? 'True' : 'False'}, 'shape': ${tuple}, }`;
  const version = opts.version ?? 1;
  const prefix = version === 1 ? 10 : 12;
  // numpy pads the header with spaces and a newline so the data starts 64-byte aligned.
  const raw = new TextEncoder().encode(dict);
  const headerLen = Math.ceil((prefix + raw.length + 1) / 64) * 64 - prefix;
  const out = new Uint8Array(prefix + headerLen + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  out.fill(0x20, prefix, prefix + headerLen);
  out.set(raw, prefix);
  out[prefix + headerLen - 1] = 0x0a;
  out.set(data, prefix + headerLen);
  if (opts.bigEndian && size > 1) swapBytes(out.subarray(prefix + headerLen), size);
  return out;
}
