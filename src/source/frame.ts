/**
 * The frame model every reader produces and every later stage consumes.
 *
 * Frame data is always little-endian and C-ordered so that the HDF5 side never has to ask
 * where a frame came from: readers convert at the edge, once.
 */
import { FurError } from '../errors.js';

export type NumericDtype =
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'float16' | 'float32' | 'float64';

/** 'bytes' is an opaque layout: one frame is a whole file (a JPEG, a vendor blob) of any length. */
export type Dtype = NumericDtype | 'bytes';

const SIZES: Record<Dtype, number> = {
  int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8,
  float16: 2, float32: 4, float64: 8, bytes: 1,
};

export const DTYPES: readonly Dtype[] = Object.keys(SIZES) as Dtype[];

/**
 * One file's worth of frames. `shape` is the shape of one frame (no frame axis);
 * `data` holds `count` frames back to back. For 'bytes', shape is [] and data is the file.
 * `data` may be a view into a larger buffer; from readFrames its byteOffset is always a
 * multiple of the item size, so typed-array views over it work.
 */
export interface FrameBlock {
  file: string;
  name: string;
  dtype: Dtype;
  shape: number[];
  count: number;
  data: Uint8Array;
  mtimeMs: number;
  /** what the file says about its frames, where its format carries anything (TIFF tags) */
  source?: SourceInfo;
  /** values given with the frames (a program's or a stream's), stored as JSON text per frame */
  attrs?: Record<string, unknown>;
  /**
   * `data` is one HDF5 chunk already through a filter (a detector's bitshuffle + LZ4 frame),
   * stored as received; absent: `data` is the frames' bytes
   */
  encoding?: FrameEncoding;
}

export interface SourceInfo {
  /** each frame's acquisition time (ms since 1970) as the file records it; undefined where it does not */
  acquiredMs?: (number | undefined)[];
  /** descriptive fields of the file, by the name they are stored under (tiff_software, …) */
  tags?: Record<string, string | number>;
}

export type FrameEncoding = 'bitshuffle-lz4';

/** What a decoder knows from the bytes alone; the dispatcher adds file, name and mtime. */
export type DecodedFrames = Pick<FrameBlock, 'dtype' | 'shape' | 'count' | 'data' | 'source'>;

export function itemsize(dtype: Dtype): number {
  return SIZES[dtype];
}

export function isDtype(name: string): name is Dtype {
  return Object.prototype.hasOwnProperty.call(SIZES, name);
}

/** `setting` names where the text came from (e.g. '--dtype') so the error points at it. */
export function parseDtype(name: string, setting = 'dtype'): Dtype {
  const n = name.trim().toLowerCase();
  if (isDtype(n)) return n;
  throw new FurError('unknown-dtype',
    `${setting}: unknown dtype '${name}'; use one of ${DTYPES.join(', ')}`,
    { setting, value: name });
}

/** Accepts '512x512', '512,512' or '[512, 512, 3]'. */
export function parseShape(text: string, setting = 'shape'): number[] {
  const body = text.trim().replace(/^[[(]|[\])]$/g, '');
  const parts = body.split(/[x×,\s]+/i).filter((p) => p.length > 0);
  const dims = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (dims.length === 0 || dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
    throw new FurError('bad-shape',
      `${setting}: '${text}' is not a frame shape; write positive sizes like 512x512 or 480x640x3`,
      { setting, value: text });
  }
  return dims;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes in one frame; for 'bytes' frames have no fixed size, so this is undefined. */
export function frameBytes(dtype: Dtype, shape: readonly number[]): number | undefined {
  return dtype === 'bytes' ? undefined : elementCount(shape) * itemsize(dtype);
}

/** The i-th frame of a block, as a view (no copy). */
export function frameAt(block: DecodedFrames, i: number): Uint8Array {
  if (!Number.isInteger(i) || i < 0 || i >= block.count) {
    throw new RangeError(`frame ${i} out of range 0..${block.count - 1}`);
  }
  if (block.dtype === 'bytes') return block.data;
  const size = frameBytes(block.dtype, block.shape)!;
  return block.data.subarray(i * size, (i + 1) * size);
}

/** Reverses the byte order of each element in place (big-endian sources → little-endian). */
export function swapBytes(data: Uint8Array, size: number): void {
  if (size <= 1) return;
  if (data.length % size !== 0) throw new RangeError(`length ${data.length} is not a multiple of ${size}`);
  for (let i = 0; i < data.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = data[a]!;
      data[a] = data[b]!;
      data[b] = t;
    }
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function describeLayout(dtype: Dtype, shape: readonly number[]): string {
  return dtype === 'bytes' ? 'bytes' : `${dtype}[${shape.join('x')}]`;
}
