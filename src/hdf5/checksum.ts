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
 * HDF5's Fletcher-32: 16-bit words taken big-end first (byte 0 is the high byte), sums folded
 * every 360 words so they never overflow, an odd final byte counted as a high byte.
 */
export function fletcher32(data: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  let words = data.length >>> 1;
  let i = 0;
  while (words > 0) {
    let block = words > 360 ? 360 : words;
    words -= block;
    while (block-- > 0) {
      sum1 += (data[i] << 8) | data[i + 1];
      sum2 += sum1;
      i += 2;
    }
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (data.length & 1) {
    sum1 += data[i] << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}
