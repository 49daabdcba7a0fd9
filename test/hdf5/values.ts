/**
 * Deterministic element values for the writer's tests, computed without the writer: a dataset
 * element is a function of (seed, element index) alone, so a test (or a Python reader) can
 * recompute any row, and expected bytes come from DataView with an explicit byte order rather
 * than from fur's own encoders.
 */

/** What a test needs to know about a dtype spec string: kind, size, byte order. */
export interface DtypeInfo {
  spec: string;
  kind: 'int' | 'uint' | 'float' | 'fixed-ascii' | 'fixed-utf8' | 'vlen-str' | 'vlen-bytes';
  size: number;
  bigEndian: boolean;
  /** numpy's dtype string, as both oracles print it */
  numpy: string;
}

const NUMERIC_SIZES: Record<string, [DtypeInfo['kind'], number]> = {
  int8: ['int', 1], int16: ['int', 2], int32: ['int', 4], int64: ['int', 8],
  uint8: ['uint', 1], uint16: ['uint', 2], uint32: ['uint', 4], uint64: ['uint', 8],
  float16: ['float', 2], float32: ['float', 4], float64: ['float', 8],
};
const CODE: Record<string, string> = {
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  f2: 'float16', f4: 'float32', f8: 'float64',
};

export function dtypeInfo(spec: string): DtypeInfo {
  let name = spec;
  let bigEndian = false;
  const np = /^([<>|])([iuf][1248])$/.exec(spec);
  if (np) { name = CODE[np[2]!]!; bigEndian = np[1] === '>'; }
  const num = NUMERIC_SIZES[name];
  if (num) {
    const [kind, size] = num;
    const letter = kind === 'float' ? 'f' : kind === 'int' ? 'i' : 'u';
    const order = size === 1 ? '|' : bigEndian ? '>' : '<';
    return { spec, kind, size, bigEndian: size > 1 && bigEndian, numpy: `${order}${letter}${size}` };
  }
  if (spec === 'vlen-str') return { spec, kind: 'vlen-str', size: 16, bigEndian: false, numpy: '|O' };
  if (spec === 'vlen-bytes') return { spec, kind: 'vlen-bytes', size: 16, bigEndian: false, numpy: '|O' };
  const fixed = /^(S|U8:)(\d+)$/.exec(spec);
  if (fixed) {
    const size = Number(fixed[2]);
    return { spec, kind: fixed[1] === 'S' ? 'fixed-ascii' : 'fixed-utf8', size, bigEndian: false, numpy: `|S${size}` };
  }
  throw new Error(`test dtype ${spec}?`);
}

export const isNumeric = (t: DtypeInfo) => t.kind === 'int' || t.kind === 'uint' || t.kind === 'float';
export const isVlen = (t: DtypeInfo) => t.kind === 'vlen-str' || t.kind === 'vlen-bytes';
export const isFixedString = (t: DtypeInfo) => t.kind === 'fixed-ascii' || t.kind === 'fixed-utf8';

/** A 32-bit hash of (seed, index, lane): splitmix-style finalizer over the three inputs. */
export function mix(seed: number, index: number, lane = 0): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul((index | 0) + 0x7f4a7c15, 0x85ebca6b) ^ Math.imul(lane + 0x165667b1, 0xc2b2ae35)) | 0;
  h ^= h >>> 16; h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15; h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  // fold in the high part of large indices too
  h = (h + Math.imul(Math.floor(index / 0x100000000) | 0, 0x27d4eb2f)) | 0;
  h ^= h >>> 13; h = Math.imul(h, 0x5bd1e995); h ^= h >>> 15;
  return h >>> 0;
}

/** Little-endian bytes of numeric element `index` (NaNs canonical, every other bit pattern allowed). */
export function numericLE(t: DtypeInfo, seed: number, index: number, out: Uint8Array, at: number, view?: DataView): void {
  if (t.size === 1) {
    const a = mix(seed, index, 0);
    const special = a % 16 === 0 ? mix(seed, index, 1) % 4 : -1;
    out[at] = special === 0 ? 0 : special === 1 ? 0xff : special === 2 ? 0x80 : special === 3 ? 0x7f : a & 0xff;
    return;
  }
  const v = view ?? new DataView(out.buffer, out.byteOffset, out.byteLength);
  const o = at;
  const a = mix(seed, index, 0);
  const b = mix(seed, index, 1);
  // every ~16th element is an extreme: 0, all ones, the sign bit alone, or the largest positive
  const special = a % 16 === 0 ? b % 4 : -1;
  if (t.size === 2) {
    let bits = special === 0 ? 0 : special === 1 ? 0xffff : special === 2 ? 0x8000 : special === 3 ? 0x7fff : a & 0xffff;
    if (t.kind === 'float' && (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff)) bits = 0x7e00;
    v.setUint16(o, bits, true);
  } else if (t.size === 4) {
    let bits = special === 0 ? 0 : special === 1 ? 0xffffffff : special === 2 ? 0x80000000 : special === 3 ? 0x7fffffff : a;
    if (t.kind === 'float' && (bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff)) bits = 0x7fc00000;
    v.setUint32(o, bits >>> 0, true);
  } else {
    let hi = special === 0 ? 0 : special === 1 ? 0xffffffff : special === 2 ? 0x80000000 : special === 3 ? 0x7fffffff : a;
    let lo = special === 0 || special === 2 ? 0 : special === 1 || special === 3 ? 0xffffffff : b;
    if (t.kind === 'float' && (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) || lo)) { hi = 0x7ff80000; lo = 0; }
    v.setUint32(o, lo >>> 0, true);
    v.setUint32(o + 4, hi >>> 0, true);
  }
}

const UTF8_PIECES = ['a', 'Z', '0', ' ', 'é', 'ü', 'ñ', '€', 'Ω', '中', '𝄞', '~'];

/** A fixed-length string element: ASCII for S<n>, UTF-8 whole characters for U8:<n>; never a NUL. */
export function fixedString(t: DtypeInfo, seed: number, index: number): string {
  const h = mix(seed, index, 2);
  const len = h % (t.size + 1);
  let s = '';
  if (t.kind === 'fixed-ascii') {
    for (let i = 0; i < len; i++) s += String.fromCharCode(0x21 + (mix(seed, index, 3 + i) % 94));
    return s;
  }
  let bytes = 0;
  for (let i = 0; bytes < len; i++) {
    const piece = UTF8_PIECES[mix(seed, index, 3 + i) % UTF8_PIECES.length]!;
    const n = Buffer.byteLength(piece);
    if (bytes + n > len) break;
    s += piece;
    bytes += n;
  }
  return s;
}

/** A vlen string element: mostly short, sometimes empty, now and then several KiB. */
export function vlenString(seed: number, index: number): string {
  const h = mix(seed, index, 2);
  const len = h % 50 === 0 ? 3000 + (h % 2000) : h % 7 === 0 ? 0 : h % 40;
  let s = '';
  for (let i = 0; i < len; i++) s += UTF8_PIECES[mix(seed, index, 3 + (i % 64)) % UTF8_PIECES.length]!;
  return s;
}

/** A vlen bytes element (a whole "file"): mostly short, sometimes empty, now and then several KiB. */
export function vlenBytes(seed: number, index: number): Uint8Array {
  const h = mix(seed, index, 2);
  const len = h % 50 === 0 ? 5000 + (h % 3000) : h % 7 === 0 ? 0 : h % 70;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (mix(seed, index, 3 + (i & 7)) >>> ((i >> 3) % 24)) & 0xff;
  return out;
}

/** Bytes of `count` elements from `start`, in the file's byte order (`le` = false) or little-endian. */
export function elementBytes(t: DtypeInfo, seed: number, start: number, count: number, le: boolean): Uint8Array {
  const out = new Uint8Array(count * t.size);
  if (isNumeric(t)) {
    const view = new DataView(out.buffer);
    for (let k = 0; k < count; k++) numericLE(t, seed, start + k, out, k * t.size, view);
    if (!le && t.bigEndian) swapInPlace(out, t.size);
  } else if (isFixedString(t)) {
    for (let k = 0; k < count; k++) out.set(Buffer.from(fixedString(t, seed, start + k), 'utf8'), k * t.size);
  } else {
    throw new Error(`elementBytes of ${t.spec}: vlen elements have no fixed bytes`);
  }
  return out;
}

export function swapInPlace(b: Uint8Array, size: number): Uint8Array {
  if (size > 1) for (let o = 0; o < b.length; o += size) b.subarray(o, o + size).reverse();
  return b;
}

/** The JSON scalar an oracle prints for numeric element bytes (little-endian) of `t`. */
export function scalarOf(t: DtypeInfo, le: Uint8Array, at = 0): number | string {
  const v = new DataView(le.buffer, le.byteOffset + at, t.size);
  let x: number | bigint;
  if (t.kind === 'float') x = t.size === 2 ? halfToNumber(v.getUint16(0, true)) : t.size === 4 ? v.getFloat32(0, true) : v.getFloat64(0, true);
  else if (t.size === 1) x = t.kind === 'int' ? v.getInt8(0) : v.getUint8(0);
  else if (t.size === 2) x = t.kind === 'int' ? v.getInt16(0, true) : v.getUint16(0, true);
  else if (t.size === 4) x = t.kind === 'int' ? v.getInt32(0, true) : v.getUint32(0, true);
  else x = t.kind === 'int' ? v.getBigInt64(0, true) : v.getBigUint64(0, true);
  return jsonScalar(x);
}

/** Oracles' JSON conventions: integers beyond 2^53 as decimal strings, non-finite floats by name. */
export function jsonScalar(x: number | bigint): number | string {
  if (typeof x === 'bigint') return x >= -(2n ** 53n) && x <= 2n ** 53n ? Number(x) : x.toString();
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return x;
}

/** IEEE half-precision bits to a number (independent of fur's float16 encoder). */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Half-precision bits of a number that half precision represents exactly (throws otherwise). */
export function exactHalfBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const s = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return s;
  if (a === Infinity) return s | 0x7c00;
  let bits: number;
  if (a < 2 ** -14) bits = a / 2 ** -24;
  else {
    const e = Math.floor(Math.log2(a));
    bits = ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
  }
  if (!Number.isInteger(bits) || halfToNumber(s | bits) !== (s ? -a : a)) throw new Error(`${x} is not exact in half precision`);
  return s | bits;
}

/** Little-endian bytes of one numeric value of `t` (fill values, attribute expectations). */
export function numberLE(t: DtypeInfo, x: number | bigint): Uint8Array {
  const out = new Uint8Array(t.size);
  const v = new DataView(out.buffer);
  if (t.kind === 'float') {
    if (t.size === 2) v.setUint16(0, exactHalfBits(Number(x)), true);
    else if (t.size === 4) v.setFloat32(0, Number(x), true);
    else v.setFloat64(0, Number(x), true);
  } else if (t.size === 8) {
    if (t.kind === 'int') v.setBigInt64(0, BigInt(x), true); else v.setBigUint64(0, BigInt(x), true);
  } else if (t.size === 4) {
    if (t.kind === 'int') v.setInt32(0, Number(x), true); else v.setUint32(0, Number(x), true);
  } else if (t.size === 2) {
    if (t.kind === 'int') v.setInt16(0, Number(x), true); else v.setUint16(0, Number(x), true);
  } else if (t.kind === 'int') v.setInt8(0, Number(x)); else v.setUint8(0, Number(x));
  return out;
}

/** A small seeded PRNG (mulberry32) for generated cases; the seed is printed so a failure replays. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) { const j = Math.floor(this.next() * (i + 1)); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
    return xs;
  }
}
