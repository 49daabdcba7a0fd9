/**
 * The two checksums HDF5 uses. Written from the published algorithms (Bob Jenkins' lookup3
 * `hashlittle`, and Fletcher's checksum over 16-bit words as HDF5 defines it).
 */

function rot(x: number, k: number): number { return (x << k) | (x >>> (32 - k)); }

/**
 * lookup3 hashlittle with initval 0, as used for every checksummed metadata block.
 * Note the tail rule: the main loop consumes blocks only while MORE than 12 bytes remain, so a
 * length that is a multiple of 12 ends with a full 12-byte tail (a classic porting bug).
 */
export function lookup3(data: Uint8Array, initval = 0): number {
  let len = data.length;
  let a = (0xdeadbeef + len + initval) | 0;
  let b = a;
  let c = a;
  let i = 0;
  const w = (o: number) => data[o] | (data[o + 1] << 8) | (data[o + 2] << 16) | (data[o + 3] << 24);
  while (len > 12) {
    a = (a + w(i)) | 0; b = (b + w(i + 4)) | 0; c = (c + w(i + 8)) | 0;
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
    len -= 12; i += 12;
  }
  if (len === 0) return c >>> 0;
  // tail: bytes past the end count as zero
  const t = new Uint8Array(12);
  t.set(data.subarray(i, i + len));
  const tw = (o: number) => t[o] | (t[o + 1] << 8) | (t[o + 2] << 16) | (t[o + 3] << 24);
  a = (a + tw(0)) | 0; b = (b + tw(4)) | 0; c = (c + tw(8)) | 0;
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return c >>> 0;
}

/**
 * HDF5's Fletcher-32: 16-bit words taken big-end first (byte 0 is the high byte), sums modulo
 * 65535, an odd final byte counted as a high byte.
 *
 * Every chunk of an append file passes through here, so it reads the words in the machine's
 * (little-endian) order and corrects once at the end: swapping a word's bytes is multiplying it
 * by 256 modulo 65535, so the big-endian sums are 256 × the little-endian ones. libhdf5 folds
 * its sums, which keeps a non-zero sum that is a multiple of 65535 at 0xffff rather than 0; only
 * all-zero data sums to 0.
 */
export function fletcher32(data: Uint8Array): number {
  return new Fletcher32().update(data).digest();
}

/**
 * fletcher32 of bytes that arrive in pieces (the rows of a chunk written where they belong, with
 * no copy into a chunk buffer): the same sums, carried from piece to piece, and an odd byte at
 * the end of one piece paired with the first byte of the next.
 */
export class Fletcher32 {
  private sum1 = 0;
  private sum2 = 0;
  private any = 0;
  /** the low byte of a word whose high byte is in the next piece, or -1 */
  private odd = -1;

  update(data: Uint8Array): this {
    if (data.length === 0) return this;
    if (this.odd >= 0) {
      this.word(BIG_ENDIAN ? (this.odd << 8) | data[0]! : this.odd | (data[0]! << 8));
      this.odd = -1;
      data = data.subarray(1);
    }
    if (data.byteOffset & 1) data = data.slice(); // a copy starts on an even address
    let words = data.length >>> 1;
    if (words > 0 && (data.byteOffset & 2)) {
      // one word first, so the rest can be read 32 bits (two words) at a time
      this.word(new Uint16Array(data.buffer, data.byteOffset, 1)[0]!);
      data = data.subarray(2);
      words--;
    }
    const pairs = words >>> 1;
    const w = pairs > 0 ? new Uint32Array(data.buffer, data.byteOffset, pairs) : NO_WORDS;
    // Small integers: 90 pairs (180 words) from sums below 65535 keep sum2 under 2^31, so both
    // sums stay 32-bit integers (twice as fast as doubles) and are reduced once per block.
    let sum1 = this.sum1 | 0;
    let sum2 = this.sum2 | 0;
    let any = this.any;
    for (let i = 0; i < pairs;) {
      const end = Math.min(pairs, i + 90);
      for (; i < end; i++) {
        const v = w[i]!;
        sum1 = (sum1 + ((v >>> FIRST) & 0xffff)) | 0;
        sum2 = (sum2 + sum1) | 0;
        sum1 = (sum1 + ((v >>> SECOND) & 0xffff)) | 0;
        sum2 = (sum2 + sum1) | 0;
        any |= v;
      }
      sum1 %= 65535;
      sum2 %= 65535;
    }
    this.sum1 = sum1;
    this.sum2 = sum2;
    this.any = any;
    if (words & 1) this.word(new Uint16Array(data.buffer, data.byteOffset + pairs * 4, 1)[0]!);
    if (data.length & 1) this.odd = data[data.length - 1]!;
    return this;
  }

  digest(): number {
    let sum1 = this.sum1;
    let sum2 = this.sum2;
    let any = this.any;
    if (!BIG_ENDIAN) {
      sum1 = (sum1 * 256) % 65535;
      sum2 = (sum2 * 256) % 65535;
    }
    if (this.odd >= 0) {
      const v = this.odd << 8;
      sum1 = (sum1 + v) % 65535;
      sum2 = (sum2 + sum1) % 65535;
      any |= v;
    }
    if (any) {
      if (sum1 === 0) sum1 = 0xffff;
      if (sum2 === 0) sum2 = 0xffff;
    }
    return ((sum2 << 16) | sum1) >>> 0;
  }

  /** one word in the machine's order */
  private word(v: number): void {
    this.sum1 = (this.sum1 + v) % 65535;
    this.sum2 = (this.sum2 + this.sum1) % 65535;
    this.any |= v;
  }
}

const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
/** where, in a 32-bit read of two words, the first and the second word sit */
const FIRST = BIG_ENDIAN ? 16 : 0;
const SECOND = 16 - FIRST;
const NO_WORDS = new Uint32Array(0);
