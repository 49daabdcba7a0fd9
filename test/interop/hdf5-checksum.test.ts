/**
 * fur's lookup3 and Fletcher-32 against the functions libhdf5 1.10.8 itself uses (called
 * through ctypes from the library h5py loaded): every length 0..600, lengths around the
 * 12-byte lookup3 blocks and the 360-word Fletcher-32 folding blocks, random and all-ones data.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fletcher32, lookup3 } from '../../src/hdf5/checksum.js';
import { runOk } from '../../harness/run.js';
import { h5env, PYTHON, SUPPORT_DIR } from './support/h5py.js';
import { LIBHDF5_FLETCHER32, LIBHDF5_LOOKUP3, seq } from '../hdf5/checksum-vectors.js';

describe('checksums against libhdf5', () => {
  it('lookup3 and Fletcher-32 equal HDF5 1.10.8 on 900 inputs', async () => {
    let x = 2024;
    const rnd = (n: number) => Uint8Array.from({ length: n }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24));
    const inputs: { data: Uint8Array; initval: number }[] = [];
    for (let n = 0; n <= 600; n++) inputs.push({ data: rnd(n), initval: n % 3 === 0 ? 0 : x });
    for (const n of [719, 720, 721, 722, 1439, 1440, 1441, 4096, 65535, 65536, 100_001]) {
      inputs.push({ data: rnd(n), initval: 0 }, { data: new Uint8Array(n).fill(0xff), initval: 0 });
    }
    for (const n of Object.keys(LIBHDF5_LOOKUP3).concat(Object.keys(LIBHDF5_FLETCHER32))) inputs.push({ data: seq(Number(n)), initval: 0 });
    while (inputs.length < 900) inputs.push({ data: rnd(inputs.length % 97), initval: inputs.length });
    const payload = JSON.stringify(inputs.map((i) => ({ data: Buffer.from(i.data).toString('base64'), initval: i.initval >>> 0 })));
    const r = await runOk(PYTHON, [join(SUPPORT_DIR, 'hdf5-checksum.py')], { input: payload, env: h5env() });
    const got = JSON.parse(r.stdout.toString('utf8')) as { library: string; results: { lookup3: number; fletcher32: number }[] };
    assert.match(got.library, /libhdf5/);
    assert.equal(got.results.length, inputs.length);
    inputs.forEach((inp, i) => {
      const want = got.results[i]!;
      assert.equal(lookup3(inp.data, inp.initval >>> 0), want.lookup3, `lookup3, ${inp.data.length} bytes, initval ${inp.initval >>> 0}`);
      assert.equal(fletcher32(inp.data), want.fletcher32, `fletcher32, ${inp.data.length} bytes`);
    });
    // and the values the npm tier hard-codes are the library's
    for (const [n, v] of Object.entries(LIBHDF5_LOOKUP3)) assert.equal(lookup3(seq(Number(n))), v);
  });
});
