/**
 * The npm-tier oracle checks itself with no system package: files written by h5wasm (the
 * HDF5 C library) must read back through `h5wasmRead` as exactly the description a test
 * expects, and the comparison must catch differences and damaged data.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import h5wasm from 'h5wasm/node';
import { assertSameStructure, dataset, h5wasmRead, h5wasmReady, valueBytes, valueStrings, type H5Doc } from './h5wasm.js';
import { firstPatternMismatch, patternRow, patternRows } from './pattern.js';

const work = mkdtempSync(join(tmpdir(), 'fur-h5wasm-oracle-'));
after(() => rmSync(work, { recursive: true, force: true }));

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const noFilters = { filters: [], compression: null, compression_opts: null, shuffle: false, fletcher32: false };
const COUNTS = new Uint16Array(Array.from({ length: 24 }, (_, i) => i * 1000));
const FRAMES = patternRows(0, 5, 12, 3);

// What a test would expect of the file written below, spelled out field by field.
const EXPECTED: H5Doc = {
  reader: 'expected',
  objects: {
    '/': {
      kind: 'group',
      members: ['frames', 'g', 'latest'],
      attrs: {
        big: { dtype: '<i8', shape: [], value: (2n ** 60n + 1n).toString() },
        gain: { dtype: '<f4', shape: [3], value: [1.5, 'NaN', -0.25] },
        title: { dtype: '|O', string: { encoding: 'utf-8', vlen: true }, shape: [], value: 'made by h5wasm' },
      },
    },
    '/frames': {
      kind: 'dataset', dtype: '|u1', shape: [5, 12], maxshape: [null, 12], chunks: [2, 12], ...noFilters,
      value: { kind: 'bytes', base64: b64(FRAMES) },
      attrs: { seed: { dtype: '<i4', shape: [], value: 3 } },
    },
    '/g': { kind: 'group', members: ['codes', 'counts', 'names', 'scalar', 'signed'], attrs: {} },
    '/g/codes': {
      kind: 'dataset', dtype: '|S4', string: { encoding: 'utf-8', vlen: false }, shape: [2], maxshape: [2], chunks: null, ...noFilters,
      value: { kind: 'strings', items: ['AB', 'C'] }, attrs: {},
    },
    '/g/counts': {
      kind: 'dataset', dtype: '<u2', shape: [6, 4], maxshape: [null, 4], chunks: [2, 4],
      filters: [{ id: 1, cd_values: [9] }], compression: 'gzip', compression_opts: 9, shuffle: false, fletcher32: false,
      value: { kind: 'bytes', base64: b64(COUNTS) },
      attrs: { unit: { dtype: '|O', string: { encoding: 'utf-8', vlen: true }, shape: [], value: 'adu' } },
    },
    '/g/names': {
      kind: 'dataset', dtype: '|O', string: { encoding: 'utf-8', vlen: true }, shape: [2], maxshape: [2], chunks: null, ...noFilters,
      value: { kind: 'strings', items: ['a', 'ünï'] }, attrs: {},
    },
    '/g/scalar': {
      kind: 'dataset', dtype: '<f4', shape: [], maxshape: [], chunks: null, ...noFilters,
      value: { kind: 'bytes', base64: b64(new Float32Array([3.25])) }, attrs: {},
    },
    '/g/signed': {
      kind: 'dataset', dtype: '|i1', shape: [3], maxshape: [3], chunks: null, ...noFilters,
      value: { kind: 'bytes', base64: b64(new Int8Array([-1, 2, -3])) }, attrs: {},
    },
    '/latest': { kind: 'softlink', target: '/frames' },
  },
};

describe('h5wasm oracle', () => {
  const file = join(work, 'sample.h5');

  before(async () => {
    await h5wasmReady();
    const f = new h5wasm.File(file, 'w');
    f.create_attribute('title', 'made by h5wasm');
    f.create_attribute('gain', new Float32Array([1.5, NaN, -0.25]));
    f.create_attribute('big', new BigInt64Array([2n ** 60n + 1n]), []);
    const fr = f.create_dataset({ name: 'frames', data: FRAMES, shape: [5, 12], maxshape: [null, 12], chunks: [2, 12] });
    fr.create_attribute('seed', 3);
    const g = f.create_group('g');
    const counts = g.create_dataset({ name: 'counts', data: COUNTS, shape: [6, 4], maxshape: [null, 4], chunks: [2, 4], compression: 'gzip', compression_opts: 9 });
    counts.create_attribute('unit', 'adu');
    g.create_dataset({ name: 'names', data: ['a', 'ünï'] });
    g.create_dataset({ name: 'codes', data: ['AB', 'C'], dtype: 'S4' });
    g.create_dataset({ name: 'scalar', data: 3.25, dtype: '<f4' });
    g.create_dataset({ name: 'signed', data: new Int8Array([-1, 2, -3]) });
    f.create_soft_link('/frames', 'latest');
    f.close();
  });

  it('describes a file h5wasm wrote exactly as expected', async () => {
    const doc = await h5wasmRead(file);
    assert.match(doc.reader, /h5wasm/);
    assertSameStructure(doc, EXPECTED);
    assert.deepEqual(valueBytes(dataset(doc, 'frames')), FRAMES);
    assert.deepEqual(new Uint16Array(valueBytes(dataset(doc, 'g/counts')).slice().buffer), COUNTS);
    assert.deepEqual(valueStrings(dataset(doc, '/g/names')), ['a', 'ünï']);
  });

  it('reads bytes as it reads a path', async () => {
    assertSameStructure(await h5wasmRead(new Uint8Array(readFileSync(file))), EXPECTED);
  });

  it('limits a read to one dataset and a row range', async () => {
    const doc = await h5wasmRead(file, { dataset: 'frames', rows: [1, 4] });
    assert.deepEqual(Object.keys(doc.objects), ['/frames']);
    const fr = dataset(doc, 'frames');
    assert.deepEqual(fr.rows, [1, 4]);
    assert.deepEqual(valueBytes(fr), patternRows(1, 3, 12, 3));
    const clipped = dataset(await h5wasmRead(file, { dataset: 'frames', rows: [4, 99] }), 'frames');
    assert.deepEqual(clipped.rows, [4, 5]);
    assert.deepEqual(valueBytes(clipped), patternRow(4, 12, 3));
    const bare = await h5wasmRead(file, { values: false });
    assert.equal(dataset(bare, 'frames').value, undefined);
    assertSameStructure(bare, EXPECTED, { values: false });
  });

  it('the comparison names what differs', async () => {
    const doc = await h5wasmRead(file);
    const clone = (): H5Doc => JSON.parse(JSON.stringify(EXPECTED)) as H5Doc;

    const missing = clone();
    delete missing.objects['/g/signed'];
    assert.throws(() => assertSameStructure(doc, missing), /only in h5wasm.*\[\/g\/signed\]/);

    const attr = clone();
    const root = attr.objects['/']!;
    if (root.kind === 'group') root.attrs['title']!.value = 'other';
    assert.throws(() => assertSameStructure(doc, attr), /\/ .*attribute title/);

    const bytes = clone();
    const fr = bytes.objects['/frames']!;
    if (fr.kind === 'dataset') {
      const changed = patternRows(0, 5, 12, 3);
      changed[30] ^= 1;
      fr.value = { kind: 'bytes', base64: b64(changed) };
    }
    assert.throws(() => assertSameStructure(doc, bytes), /\/frames .*values differ at byte 30/);

    const chunks = clone();
    const c = chunks.objects['/g/counts']!;
    if (c.kind === 'dataset') c.chunks = [3, 4];
    assert.throws(() => assertSameStructure(doc, chunks), /\/g\/counts .*dataset header/);

    assertSameStructure(doc, bytes, { ignore: ['/frames'] });
    assertSameStructure(doc, chunks, { ignore: ['/g/'] });
  });

  it('fails loudly, with HDF5 2.0\'s reason, on a chunk that does not decode', async () => {
    const damaged = join(work, 'damaged.h5');
    const f = new h5wasm.File(damaged, 'w');
    const data = new Uint32Array(20000).map((_, i) => (i * 2654435761) >>> 0);
    f.create_dataset({ name: 'x', data, chunks: [5000], compression: 'gzip', compression_opts: 9 });
    f.close();
    assert.deepEqual(valueBytes(dataset(await h5wasmRead(damaged), 'x')), new Uint8Array(data.buffer));
    // zlib streams at level 9 start 78 DA: break the second chunk's stream after its header
    const bytes = readFileSync(damaged);
    const starts: number[] = [];
    for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0x78 && bytes[i + 1] === 0xda) starts.push(i);
    assert.ok(starts.length >= 4, `found ${starts.length} zlib headers`);
    bytes.fill(0xff, starts[1]! + 2, starts[1]! + 40);
    writeFileSync(damaged, bytes);
    await assert.rejects(h5wasmRead(damaged), /HDF5 reported an error while reading[\s\S]*HDF5 2\.0 says:[\s\S]*(pipeline|filter|inflate)/);
    // the structure alone still reads: the damage is in the data only
    assert.deepEqual(dataset(await h5wasmRead(damaged, { values: false }), 'x').shape, [20000]);
  });

  it('rejects a file that is not HDF5, saying why', async () => {
    await assert.rejects(h5wasmRead(new TextEncoder().encode('not an HDF5 file at all')), /could not open <bytes>[\s\S]*HDF5 2\.0 says:/);
  });
});

describe('frame pattern', () => {
  it('is (i*31 + j*7 + seed) & 0xFF', () => {
    assert.deepEqual(Array.from(patternRow(0, 5)), [0, 7, 14, 21, 28]);
    assert.deepEqual(Array.from(patternRow(1, 3, 3)), [34, 41, 48]);
    assert.deepEqual(Array.from(patternRow(1000, 2, 250)), [(1000 * 31 + 250) & 0xff, (1000 * 31 + 7 + 250) & 0xff]);
    const big = 2 ** 40 + 5;
    assert.equal(patternRow(big, 40, 9)[39], Number((BigInt(big) * 31n + 39n * 7n + 9n) & 0xffn));
  });

  it('rows are consecutive rows, and a mismatch is found by row index', () => {
    const rows = patternRows(7, 4, 10, 2);
    assert.deepEqual(rows.subarray(20, 30), patternRow(9, 10, 2));
    assert.equal(firstPatternMismatch(rows, 7, 10, 2), -1);
    rows[35] ^= 0x80;
    assert.equal(firstPatternMismatch(rows, 7, 10, 2), 10);
    assert.equal(firstPatternMismatch(rows.subarray(0, 15), 7, 10, 2), 8);
  });
});
