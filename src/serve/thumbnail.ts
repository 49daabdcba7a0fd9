/**
 * A frame made small enough to look at: every s-th pixel of every s-th row (s chosen so the
 * longer side is at most MAX_SIDE, about what a page shows), then 8-bit RGB as it is, and
 * anything else scaled between its 0.5th and 99.5th percentiles so a detector's few hot pixels
 * do not turn the rest black. Only the pixels drawn are read, the percentiles included: the
 * cost is bounded by the picture (at most MAX_SIDE² samples), not by the frame.
 * Defined exactly (the browser test repeats it with numpy on the frame read back from the file):
 *   s      = max(1, ceil(max(height, width) / MAX_SIDE)); samples = frame[::s, ::s]
 *   lo, hi = the sorted finite samples at ranks floor(0.005 (n-1) + 1e-9) and ceil(0.995 (n-1) - 1e-9)
 *            (the 1e-9: 0.995 * 200 is 199.00000000000003 in floating point, and means 199)
 *   grey   = clamp(floor((v - lo) * 255 / (hi - lo) + 0.5), 0, 255)   (hi = lo: 255 above lo, else 0)
 * A frame of more than three dimensions, or three whose last is not 3 or 4 (colour samples),
 * shows its first plane.
 */
import { endianness } from 'node:os';
import type { Dtype, FrameBlock } from '../source/frame.js';
import { itemsize } from '../source/frame.js';
import { halfValue } from '../source/pattern.js';
import type { Pixels } from './png.js';

export const MAX_SIDE = 400;
const LOW = 0.005;
const HIGH = 0.995;

export function geometry(shape: readonly number[]): { height: number; width: number; colours: number } | string {
  if (shape.length < 2) return shape.length === 0 ? 'opaque frames (files kept as they are) are not drawn' : 'one-dimensional frames are not drawn';
  const last = shape[shape.length - 1]!;
  if (shape.length === 3 && (last === 3 || last === 4)) return { height: shape[0]!, width: shape[1]!, colours: last };
  return { height: shape[shape.length - 2]!, width: shape[shape.length - 1]!, colours: 1 };
}

export function sampleStep(height: number, width: number): number {
  return Math.max(1, Math.ceil(Math.max(height, width) / MAX_SIDE));
}

/**
 * Working memory reused from one picture to the next (a picture is drawn at most once a second,
 * for as long as the run lasts): the samples, the finite ones sorted, and the counts of 8 and 16-bit values.
 */
const scratch = { sampled: new Float64Array(0), finite: new Float64Array(0), counts: new Uint32Array(1 << 16) };

function samplesBuffer(n: number): Float64Array {
  if (scratch.sampled.length < n) scratch.sampled = new Float64Array(n);
  return scratch.sampled.subarray(0, n);
}

/** Page `page` of a block (its frames back to back) as thumbnail pixels; a string says why it cannot be drawn. */
export function thumbnail(block: Pick<FrameBlock, 'dtype' | 'shape' | 'count' | 'data'>, page: number): Pixels | string {
  if (block.dtype === 'bytes') return 'opaque frames (files kept as they are) are not drawn';
  const g = geometry(block.shape);
  if (typeof g === 'string') return g;
  const frameElements = block.shape.reduce((a, b) => a * b, 1);
  const values = elements(block, page * frameElements, frameElements);
  const s = sampleStep(g.height, g.width);
  const h = Math.ceil(g.height / s);
  const w = Math.ceil(g.width / s);
  const rgb = g.colours >= 3;
  const channels = rgb ? 3 : 1;
  const out = new Uint8Array(h * w * channels);
  const sampled = samplesBuffer(h * w * channels);
  let k = 0;
  if (typeof values[0] === 'bigint') {
    for (let y = 0; y < g.height; y += s) {
      for (let x = 0; x < g.width; x += s) {
        const at = (y * g.width + x) * g.colours;
        for (let c = 0; c < channels; c++) sampled[k++] = Number(values[at + c]);
      }
    }
  } else {
    const v = values as ArrayLike<number>;
    for (let y = 0; y < g.height; y += s) {
      for (let x = 0; x < g.width; x += s) {
        const at = (y * g.width + x) * g.colours;
        for (let c = 0; c < channels; c++) sampled[k++] = v[at + c]!;
      }
    }
    if (block.dtype === 'float16') for (let i = 0; i < sampled.length; i++) sampled[i] = halfValue(sampled[i]!);
  }
  if (rgb && block.dtype === 'uint8') {
    out.set(sampled);
    return { width: w, height: h, channels: 3, data: out };
  }
  const [lo, hi] = percentiles(sampled, block.dtype);
  for (let i = 0; i < sampled.length; i++) {
    const v = sampled[i]!;
    if (!Number.isFinite(v)) out[i] = 0;
    else if (hi <= lo) out[i] = v > lo ? 255 : 0;
    else out[i] = Math.min(255, Math.max(0, Math.floor(((v - lo) * 255) / (hi - lo) + 0.5)));
  }
  return { width: w, height: h, channels: channels as 1 | 3, data: out };
}

/** the samples' values at ranks LOW and HIGH of the finite ones ([0, 0] when none is) */
function percentiles(sampled: Float64Array, dtype: Dtype): [number, number] {
  const n = sampled.length;
  const ranks = (count: number) => [Math.floor(LOW * (count - 1) + 1e-9), Math.ceil(HIGH * (count - 1) - 1e-9)] as const;
  const small = SMALL_INTEGERS[dtype as keyof typeof SMALL_INTEGERS];
  if (small !== undefined) {
    // 8 and 16-bit integers: counted, not sorted (the same ranks, for a tenth of the time)
    const counts = scratch.counts.subarray(0, 1 << small.bits).fill(0);
    for (let i = 0; i < n; i++) counts[sampled[i]! - small.min]!++;
    const [a, b] = ranks(n);
    const at = (rank: number) => {
      let seen = 0;
      for (let v = 0; v < counts.length; v++) if ((seen += counts[v]!) > rank) return v + small.min;
      return 0;
    };
    return n ? [at(a), at(b)] : [0, 0];
  }
  // the finite samples, sorted apart (the samples themselves are drawn next, in their order)
  if (scratch.finite.length < n) scratch.finite = new Float64Array(n);
  const finite = scratch.finite;
  let k = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(sampled[i])) finite[k++] = sampled[i]!;
  if (!k) return [0, 0];
  const sorted = finite.subarray(0, k).sort();
  const [a, b] = ranks(k);
  return [sorted[a]!, sorted[b]!];
}

const SMALL_INTEGERS = { uint8: { bits: 8, min: 0 }, int8: { bits: 8, min: -128 }, uint16: { bits: 16, min: 0 }, int16: { bits: 16, min: -32768 } } as const;

const VIEWS = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array,
  uint64: BigUint64Array, int64: BigInt64Array, float16: Uint16Array /* bits, read with halfValue */, float32: Float32Array, float64: Float64Array,
} as const;
const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * Elements `first` to `first + count` of a block's little-endian data, viewed in place (no copy);
 * copied only where a view cannot read them as they are (data not aligned to its element size, or
 * a big-endian machine).
 */
function elements(block: Pick<FrameBlock, 'dtype' | 'data'>, first: number, count: number): ArrayLike<number> | ArrayLike<bigint> {
  const View = VIEWS[block.dtype as keyof typeof VIEWS];
  if (View === undefined) throw new RangeError(`frame data: ${block.dtype} is not numeric`);
  const size = itemsize(block.dtype);
  const need = (first + count) * size;
  if (block.data.length < need) throw new RangeError(`frame data: ${block.data.length} bytes, ${need} needed`);
  const offset = block.data.byteOffset + first * size;
  if (LITTLE_ENDIAN && offset % size === 0) return new View(block.data.buffer as ArrayBuffer, offset, count);
  const copy = block.data.slice(first * size, need);
  if (!LITTLE_ENDIAN) for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  return new View(copy.buffer, 0, count);
}
