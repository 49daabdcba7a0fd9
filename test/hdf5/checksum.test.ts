/**
 * The two checksums, against values the HDF5 library itself computes (H5_checksum_lookup3 and
 * H5_checksum_fletcher32 of libhdf5 1.10.8, called through ctypes once and written down here;
 * test/interop/hdf5-checksum.test.ts recomputes them live), Bob Jenkins' published lookup3
 * vectors, a second lookup3 written the way the C reference is structured (byte-wise tail
 * switch, unsigned 32-bit state), and hand-worked Fletcher-32 values. Then the proof that HDF5
 * really checks them: damaged metadata and damaged chunks are refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Fletcher32, fletcher32, lookup3 } from '../../src/hdf5/checksum.js';
import { H5File, MemorySink } from '../../src/hdf5/index.js';
import { LIBHDF5_FLETCHER32, LIBHDF5_LOOKUP3, seq } from './checksum-vectors.js';
import { wasmDescribe } from './wasm.js';

const work = mkdtempSync(join(tmpdir(), 'fur-hdf5-checksum-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** lookup3 hashlittle in the C reference's shape: three unsigned words, a fall-through tail. */
function referenceLookup3(k: Uint8Array, initval = 0): number {
  const s = new Uint32Array(3); // a, b, c: unsigned 32-bit arithmetic by construction
  s[0] = s[1] = s[2] = 0xdeadbeef + k.length + initval;
  const rot = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
  const mixABC = () => {
    s[0] -= s[2]; s[0] ^= rot(s[2]!, 4); s[2] += s[1]!;
    s[1] -= s[0]; s[1] ^= rot(s[0]!, 6); s[0] += s[2]!;
    s[2] -= s[1]; s[2] ^= rot(s[1]!, 8); s[1] += s[0]!;
    s[0] -= s[2]; s[0] ^= rot(s[2]!, 16); s[2] += s[1]!;
    s[1] -= s[0]; s[1] ^= rot(s[0]!, 19); s[0] += s[2]!;
    s[2] -= s[1]; s[2] ^= rot(s[1]!, 4); s[1] += s[0]!;
  };
  const finalABC = () => {
    s[2] ^= s[1]!; s[2] -= rot(s[1]!, 14);
    s[0] ^= s[2]!; s[0] -= rot(s[2]!, 11);
    s[1] ^= s[0]!; s[1] -= rot(s[0]!, 25);
    s[2] ^= s[1]!; s[2] -= rot(s[1]!, 16);
    s[0] ^= s[2]!; s[0] -= rot(s[2]!, 4);
    s[1] ^= s[0]!; s[1] -= rot(s[0]!, 14);
    s[2] ^= s[1]!; s[2] -= rot(s[1]!, 24);
  };
  let len = k.length;
  let p = 0;
  while (len > 12) {
    for (let w = 0; w < 3; w++) s[w] += k[p + 4 * w]! + (k[p + 4 * w + 1]! << 8) + (k[p + 4 * w + 2]! << 16) + k[p + 4 * w + 3]! * 0x1000000;
    mixABC();
    len -= 12;
    p += 12;
  }
  if (len === 0) return s[2]!; // nothing left: no final mix
  // the tail: byte i of what is left goes into word i/4 at bit 8*(i%4) (the C switch, unrolled)
  for (let i = len - 1; i >= 0; i--) s[i >> 2] += k[p + i]! * 2 ** (8 * (i & 3));
  finalABC();
  return s[2]!;
}

const hex = (x: number) => x.toString(16).padStart(8, '0');

describe('lookup3', () => {
  it("matches Bob Jenkins' published vectors", () => {
    const four = new Uint8Array(Buffer.from('Four score and seven years ago'));
    assert.equal(hex(lookup3(new Uint8Array(0))), 'deadbeef');
    assert.equal(hex(lookup3(new Uint8Array(0), 0xdeadbeef)), 'bd5b7dde');
    assert.equal(hex(lookup3(four)), '17770551');
    assert.equal(hex(lookup3(four, 1)), 'cd628161');
    assert.equal(hex(referenceLookup3(four, 1)), 'cd628161');
  });

  it('matches libhdf5 at lengths around the 12-byte block edges (0, 1, 11, 12, 13, 24, 25, …)', () => {
    for (const [n, want] of Object.entries(LIBHDF5_LOOKUP3)) {
      assert.equal(hex(lookup3(seq(Number(n)))), hex(want), `length ${n}`);
      assert.equal(hex(referenceLookup3(seq(Number(n)))), hex(want), `reference, length ${n}`);
    }
  });

  it('agrees with the reference-shaped implementation on every length 0..300 and random data', () => {
    let x = 12345;
    for (let n = 0; n <= 300; n++) {
      const b = Uint8Array.from({ length: n }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24));
      assert.equal(lookup3(b), referenceLookup3(b), `length ${n}`);
      assert.equal(lookup3(b, n * 977), referenceLookup3(b, n * 977), `length ${n}, initval`);
    }
  });

  it('is sensitive to every byte and to a trailing zero (length counts)', () => {
    const b = seq(25);
    const base = lookup3(b);
    for (let i = 0; i < b.length; i++) {
      const c = b.slice();
      c[i] ^= 1;
      assert.notEqual(lookup3(c), base, `byte ${i}`);
    }
    assert.notEqual(lookup3(new Uint8Array([...b, 0])), base);
  });
});

describe('Fletcher-32', () => {
  it('takes 16-bit words high byte first, and a lone final byte as a high byte (worked by hand)', () => {
    // one word 0x0102: sum1 = 0x0102, sum2 = 0x0102
    assert.equal(hex(fletcher32(new Uint8Array([1, 2]))), '01020102');
    // odd: [0xab] is the word 0xab00
    assert.equal(hex(fletcher32(new Uint8Array([0xab]))), 'ab00ab00');
    // words 0x0102, 0x0300: sum1 = 0x0402, sum2 = 0x0102 + 0x0402 = 0x0504
    assert.equal(hex(fletcher32(new Uint8Array([1, 2, 3]))), '05040402');
    // words 0x0102, 0x0304: sum1 = 0x0406, sum2 = 0x0508
    assert.equal(hex(fletcher32(new Uint8Array([1, 2, 3, 4]))), '05080406');
    assert.equal(fletcher32(new Uint8Array(0)), 0);
  });

  it('gives the same sums over pieces of any length, odd ones included (rows summed as they are written)', () => {
    // [1, 2, 3] a byte at a time: the word 0x0102 spans two pieces
    const bytewise = new Fletcher32();
    for (const b of [1, 2, 3]) bytewise.update(new Uint8Array([b]));
    assert.equal(hex(bytewise.digest()), '05040402');
    for (const [n, want] of Object.entries(LIBHDF5_FLETCHER32)) {
      const data = seq(Number(n));
      // pieces of 1, 2, 3, ... bytes, at odd and even offsets of their buffer
      const sum = new Fletcher32();
      for (let at = 0, k = 1; at < data.length; at += k, k = (k % 97) + 1) sum.update(data.subarray(at, at + k));
      assert.equal(hex(sum.digest()), hex(want), `length ${n} in pieces`);
    }
  });

  it('matches libhdf5 for odd and even lengths, across the 360-word folding blocks', () => {
    for (const [n, want] of Object.entries(LIBHDF5_FLETCHER32)) assert.equal(hex(fletcher32(seq(Number(n)))), hex(want), `length ${n}`);
    // all-ones data: sums fold to 0xffff rather than wrapping to 0, as libhdf5 does
    for (const [n, want] of [[1, 'ff00ff00'], [2, 'ffffffff'], [3, 'ff00ff00'], [720, 'ffffffff'], [721, 'ff00ff00'], [2001, 'ff00ff00']] as const) {
      assert.equal(hex(fletcher32(new Uint8Array(n).fill(0xff))), want, `0xff × ${n}`);
    }
  });

  it('is congruent to the plain modular definition on long random data', () => {
    let x = 99;
    for (const n of [2, 719, 720, 721, 5000, 65537]) {
      const b = Uint8Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24));
      let s1 = 0;
      let s2 = 0;
      for (let i = 0; i < n; i += 2) {
        s1 = (s1 + (b[i]! << 8) + (i + 1 < n ? b[i + 1]! : 0)) % 65535;
        s2 = (s2 + s1) % 65535;
      }
      const f = fletcher32(b);
      assert.equal((f & 0xffff) % 65535, s1, `sum1, length ${n}`);
      assert.equal((f >>> 16) % 65535, s2, `sum2, length ${n}`);
    }
  });
});

/** libhdf5's algorithm as written there (H5checksum.c): words high byte first, folded every 360 */
function fletcher32Folded(data: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  let len = data.length >>> 1;
  let i = 0;
  while (len > 0) {
    let block = Math.min(360, len);
    len -= block;
    while (block-- > 0) {
      sum1 += (data[i]! << 8) | data[i + 1]!;
      sum2 += sum1;
      i += 2;
    }
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (data.length & 1) {
    sum1 += data[i]! << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}

describe('Fletcher-32, the fast form', () => {
  it('equals the folded form on any data, length and alignment (sums of exactly 0 mod 65535 too)', () => {
    let x = 7;
    const rnd = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24);
    const lengths = [0, 1, 2, 3, 359 * 2, 720, 721, 8191, 8192, 8193, 8194, 20000, 131073];
    for (const n of lengths) {
      for (const kind of ['random', 'zero', 'ones', 'sparse', 'multiple'] as const) {
        const buf = new Uint8Array(n + 3);
        for (let i = 0; i < buf.length; i++) {
          buf[i] = kind === 'random' ? rnd() : kind === 'zero' ? 0 : kind === 'ones' ? 0xff : kind === 'sparse' ? (i % 97 === 0 ? rnd() : 0) : (i % 2 ? 0xff : 0);
        }
        // every address modulo 4: words are read two at a time from 4-byte boundaries
        for (const offset of [0, 1, 2, 3]) {
          const d = buf.subarray(offset, offset + n);
          assert.equal(hex(fletcher32(d)), hex(fletcher32Folded(d)), `${kind}, length ${n}, offset ${offset}`);
        }
      }
    }
  });
});

describe('HDF5 verifies what the writer checksums', () => {
  async function sample(): Promise<{ bytes: Uint8Array; chunkAt: number }> {
    const sink = new MemorySink();
    const f = await H5File.create(sink, { eofHeadroom: 0 });
    const d = f.createDataset('/x', { dtype: 'uint8', shape: [0, 7], maxshape: [null, 7], chunks: [3, 7], filters: [{ id: 'fletcher32' }] });
    await d.append(new Uint8Array(21).map((_, i) => i));
    f.setAttr('/x', 'note', 'checked');
    await f.close();
    const bytes = sink.bytes();
    return { bytes, chunkAt: d.index!.rowEntries(0)?.[0]?.address ?? -1 };
  }

  it('reads the intact file', async () => {
    const { bytes } = await sample();
    const p = join(work, 'ok.h5');
    writeFileSync(p, bytes);
    const doc = await wasmDescribe(p);
    assert.equal(doc.objects['/x']!.kind, 'dataset');
  });

  it('refuses a damaged superblock, object header and chunk', async () => {
    const { bytes, chunkAt } = await sample();
    const headerAt = bytes.indexOf(0x4f, 48); // the first "OHDR" after the superblock
    assert.equal(Buffer.from(bytes.subarray(headerAt, headerAt + 4)).toString('latin1'), 'OHDR');
    const damaged: [string, number][] = [['superblock', 30], ['root object header', headerAt + 12]];
    if (chunkAt > 0) damaged.push(['chunk', chunkAt + 5]);
    for (const [what, at] of damaged) {
      const b = bytes.slice();
      b[at] ^= 0x10;
      const p = join(work, `bad-${what.replace(/ /g, '-')}.h5`);
      writeFileSync(p, b);
      await assert.rejects(wasmDescribe(p), /h5wasm/, `${what} damaged at ${at} must be refused`);
    }
    assert.ok(damaged.length === 3, 'the chunk address is known');
  });
});
