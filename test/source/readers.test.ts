import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { itemsize, type NumericDtype } from '../../src/source/frame.js';
import { expectedFrame } from '../../src/source/pattern.js';
import { checkConsistent, pickFormat, readFrames } from '../../src/source/readers/index.js';
import { decodeNpy } from '../../src/source/readers/npy.js';
import { decodeTiff } from '../../src/source/readers/tiff.js';
import { encodeNpy } from '../../src/source/writers/npy.js';
import { encodeTiff } from '../../src/source/writers/tiff.js';
import { FIXTURES, isError, tempDir, values } from './helpers.js';

const NUMERIC: NumericDtype[] = ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float16', 'float32', 'float64'];

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

test('format follows the option, else the extension; unknown extensions are bytes', () => {
  assert.equal(pickFormat('/a/x.NPY'), 'npy');
  assert.equal(pickFormat('/a/x.tiff'), 'tiff');
  assert.equal(pickFormat('/a/x.bin'), 'raw');
  assert.equal(pickFormat('/a/x.jpg'), 'bytes');
  assert.equal(pickFormat('/a/x'), 'bytes');
  assert.equal(pickFormat('/a/x.dat', { format: 'raw' }), 'raw');
});

test('raw: one or several frames, values intact, big-endian converted', async (t) => {
  const dir = await tempDir(t);
  const frames = [0, 1, 2].map((i) => expectedFrame(9, i, 'int32', [4, 5]));
  const file = join(dir, 'burst.raw');
  await writeFile(file, concat(frames));
  const b = await readFrames(file, { dtype: 'int32', shape: [4, 5] });
  assert.equal(b.count, 3);
  assert.deepEqual(b.shape, [4, 5]);
  assert.equal(b.name, 'burst.raw');
  assert.ok(b.mtimeMs > 0);
  assert.deepEqual(b.data, concat(frames));

  const be = concat(frames).slice();
  for (let i = 0; i < be.length; i += 4) be.subarray(i, i + 4).reverse();
  await writeFile(join(dir, 'be.bin'), be);
  const b2 = await readFrames(join(dir, 'be.bin'), { dtype: 'int32', shape: [4, 5], byteOrder: 'big' });
  assert.deepEqual(b2.data, concat(frames));
});

test('raw: size not a whole number of frames names the file and sizes', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'cut.raw');
  await writeFile(file, new Uint8Array(2 * 16 * 2 + 3));
  await assert.rejects(readFrames(file, { dtype: 'uint16', shape: [4, 4] }), (e) => {
    isError('raw-size', file)(e);
    assert.match((e as Error).message, /67 bytes.*32 bytes/);
    return true;
  });
});

test('raw: missing layout is an error naming the settings', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'x.raw');
  await writeFile(file, new Uint8Array(8));
  await assert.rejects(readFrames(file, { dtype: 'uint8' }), (e) => isError('raw-needs-layout', file)(e) && /--shape/.test((e as Error).message));
});

test('zero-length and unreadable files', async (t) => {
  const dir = await tempDir(t);
  const empty = join(dir, 'frame1.tif');
  await writeFile(empty, '');
  await assert.rejects(readFrames(empty), isError('empty-file', empty));
  const missing = join(dir, 'nope.npy');
  await assert.rejects(readFrames(missing), isError('unreadable-file', missing));
  await assert.rejects(readFrames(dir), isError('unreadable-file', dir));
  // a FIFO named like a frame: refused at once, not waited on for a writer that never comes
  const fifo = join(dir, 'frame2.tif');
  execFileSync('mkfifo', [fifo]);
  await assert.rejects(readFrames(fifo), (e) => isError('unreadable-file', fifo)(e) && /not a regular file/.test((e as Error).message));
});

test('bytes: the whole file is one opaque frame', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'shot.jpg');
  const blob = expectedFrame(2, 0, 'bytes', [20, 20]);
  await writeFile(file, blob);
  const b = await readFrames(file);
  assert.equal(b.dtype, 'bytes');
  assert.equal(b.count, 1);
  assert.deepEqual(b.shape, []);
  assert.deepEqual(b.data, blob);
});

// Fixtures written by NumPy itself (fixtures/make_npy.py): values are arange(n) * 3 - 7 cast to the dtype.
function numpyValues(n: number, dtype: NumericDtype): (number | bigint)[] {
  return Array.from({ length: n }, (_, i) => {
    const v = i * 3 - 7;
    if (dtype === 'uint8') return ((v % 256) + 256) % 256;
    if (dtype === 'uint16') return ((v % 65536) + 65536) % 65536;
    if (dtype === 'int64') return BigInt(v);
    return v;
  });
}

test('npy: files written by numpy, every version and byte order', async () => {
  const cases: [string, NumericDtype, number[], number, object?][] = [
    ['u2_2x3.npy', 'uint16', [2, 3], 1],
    ['i4_be_2x3.npy', 'int32', [2, 3], 1],
    ['f2_4.npy', 'float16', [4], 1],
    ['f8_be_2x2.npy', 'float64', [2, 2], 1],
    ['u1_3x4x5.npy', 'uint8', [3, 4, 5], 1],
    ['u2_v2.npy', 'uint16', [2, 3], 1],
    ['u2_v3.npy', 'uint16', [2, 3], 1],
  ];
  for (const [name, dtype, shape, count] of cases) {
    const file = join(FIXTURES, name);
    const b = decodeNpy(new Uint8Array(await readFile(file)), file);
    assert.equal(b.dtype, dtype, name);
    assert.deepEqual(b.shape, shape, name);
    assert.equal(b.count, count, name);
    assert.deepEqual(values(b), numpyValues(shape.reduce((a, c) => a * c, 1), dtype), name);
  }
});

test('npy: frame axis by option or declared frame rank', async () => {
  const file = join(FIXTURES, 'i8_stack_2x2x3.npy');
  const bytes = new Uint8Array(await readFile(file));
  const whole = decodeNpy(bytes, file);
  assert.deepEqual([whole.count, whole.shape], [1, [2, 2, 3]]);
  const byRank = decodeNpy(bytes, file, { shape: [2, 3] });
  assert.deepEqual([byRank.count, byRank.shape], [2, [2, 3]]);
  const byOption = decodeNpy(bytes, file, { stack: true });
  assert.deepEqual([byOption.count, byOption.shape], [2, [2, 3]]);
  assert.deepEqual(values(byOption), numpyValues(12, 'int64'));
  assert.throws(() => decodeNpy(bytes, file, { shape: [3, 2] }), isError('frame-mismatch', file));
  assert.throws(() => decodeNpy(bytes, file, { stack: false, shape: [2, 3] }), isError('frame-mismatch', file));
});

test('npy: every numeric dtype round-trips through the writer, both byte orders', () => {
  for (const dtype of NUMERIC) {
    for (const bigEndian of [false, true]) {
      const data = expectedFrame(3, 1, dtype, [3, 5]);
      const b = decodeNpy(encodeNpy(dtype, [3, 5], data, { bigEndian }), 'x.npy');
      assert.equal(b.dtype, dtype);
      assert.deepEqual(b.data, data, `${dtype} bigEndian=${bigEndian}`);
    }
  }
});

test('npy: fortran order, truncation, unsupported dtype and bad magic are clear errors', async (t) => {
  const dir = await tempDir(t);
  const fortran = join(FIXTURES, 'fortran_3x2.npy');
  await assert.rejects(readFrames(fortran), (e) => isError('npy-fortran-order', fortran)(e) && /ascontiguousarray/.test((e as Error).message));
  const boolFile = join(FIXTURES, 'bool_2.npy');
  await assert.rejects(readFrames(boolFile), isError('npy-unsupported-dtype', boolFile));

  const full = new Uint8Array(await readFile(join(FIXTURES, 'u2_2x3.npy')));
  const cutData = join(dir, 'cut_data.npy');
  await writeFile(cutData, full.subarray(0, full.length - 3));
  await assert.rejects(readFrames(cutData), isError('npy-truncated', cutData));
  const cutHeader = join(dir, 'cut_header.npy');
  await writeFile(cutHeader, full.subarray(0, 40));
  await assert.rejects(readFrames(cutHeader), isError('npy-truncated', cutHeader));
  const cutMagic = join(dir, 'cut_magic.npy');
  await writeFile(cutMagic, full.subarray(0, 4));
  await assert.rejects(readFrames(cutMagic), isError('npy-truncated', cutMagic));
  const long = join(dir, 'long.npy');
  await writeFile(long, concat([full, new Uint8Array(2)]));
  await assert.rejects(readFrames(long), isError('npy-size', long));
  const notNpy = join(dir, 'not.npy');
  await writeFile(notNpy, 'hello, this is text');
  await assert.rejects(readFrames(notNpy), isError('npy-bad-header', notNpy));
});

test('tiff: grey and RGB, every sample type, both byte orders, strips, deflate and PackBits', () => {
  for (const dtype of NUMERIC) {
    for (const shape of [[5, 7], [4, 6, 3]]) {
      for (const opts of [{}, { bigEndian: true }, { compression: 'deflate' as const, rowsPerStrip: 2 }, { bigEndian: true, rowsPerStrip: 3 },
        { compression: 'packbits' as const, bigEndian: true }]) {
        const data = expectedFrame(4, 2, dtype, shape);
        const b = decodeTiff(encodeTiff([{ dtype, shape, data }], opts), 'x.tif');
        const what = `${dtype} ${shape.join('x')} ${JSON.stringify(opts)}`;
        assert.equal(b.dtype, dtype, what);
        assert.deepEqual(b.shape, shape, what);
        assert.equal(b.count, 1, what);
        assert.deepEqual(b.data, data, what);
      }
    }
  }
});

test('tiff: a multi-page file is a stack of frames', async (t) => {
  const dir = await tempDir(t);
  const frames = [0, 1, 2, 3].map((i) => expectedFrame(5, i, 'uint16', [6, 8]));
  const file = join(dir, 'stack.tif');
  await writeFile(file, encodeTiff(frames.map((data) => ({ dtype: 'uint16', shape: [6, 8], data }))));
  const b = await readFrames(file);
  assert.equal(b.count, 4);
  assert.deepEqual(b.shape, [6, 8]);
  assert.deepEqual(b.data, concat(frames));
});

test('tiff: descriptive tags of the first page and every page\'s DateTime (local time), both byte orders', () => {
  for (const bigEndian of [false, true]) {
    const data = expectedFrame(6, 0, 'uint16', [4, 5]);
    const b = decodeTiff(encodeTiff([
      { dtype: 'uint16', shape: [4, 5], data, tags: { description: 'exposure 0.5 s', software: 'simcam 2.1', dateTime: '2024:06:01 12:34:56', xResolution: [300, 1], yResolution: [150, 2], resolutionUnit: 3 } },
      { dtype: 'uint16', shape: [4, 5], data, tags: { dateTime: '2024:06:01 12:34:57' } },
      { dtype: 'uint16', shape: [4, 5], data, tags: { dateTime: '    :  :     :  :  ' } },
    ], { bigEndian }), 'x.tif');
    assert.deepEqual(b.source?.tags, {
      tiff_image_description: 'exposure 0.5 s', tiff_software: 'simcam 2.1', tiff_datetime: '2024:06:01 12:34:56',
      tiff_x_resolution: 300, tiff_y_resolution: 75, tiff_resolution_unit: 'centimeter',
    });
    // a blank DateTime (as cameras write when their clock is unset) is no time
    assert.deepEqual(b.source?.acquiredMs, [new Date(2024, 5, 1, 12, 34, 56).getTime(), new Date(2024, 5, 1, 12, 34, 57).getTime(), undefined]);
  }
  // a TIFF without them carries nothing
  assert.equal(decodeTiff(encodeTiff([{ dtype: 'uint8', shape: [2, 2], data: new Uint8Array(4) }]), 'y.tif').source, undefined);
});

test('tiff: truncated, mixed pages, not a TIFF', async (t) => {
  const dir = await tempDir(t);
  const whole = encodeTiff([{ dtype: 'uint16', shape: [16, 16], data: expectedFrame(1, 0, 'uint16', [16, 16]) }]);
  // Strips come before the directory, so cut inside the data and keep a plausible header.
  const cut = join(dir, 'cut.tif');
  await writeFile(cut, whole.subarray(0, 300));
  await assert.rejects(readFrames(cut), isError('tiff-truncated', cut));
  // A directory that is intact while its strip lies past the end (file cut, directory rewritten first).
  const noData = encodeTiff([{ dtype: 'uint16', shape: [16, 16], data: expectedFrame(1, 0, 'uint16', [16, 16]) }]);
  const dv = new DataView(noData.buffer);
  const ifd = dv.getUint32(4, true);
  for (let i = 0; i < dv.getUint16(ifd, true); i++) {
    if (dv.getUint16(ifd + 2 + i * 12, true) === 273) dv.setUint32(ifd + 2 + i * 12 + 8, noData.length, true);
  }
  const past = join(dir, 'past.tif');
  await writeFile(past, noData);
  await assert.rejects(readFrames(past), isError('tiff-truncated', past));

  const mixed = join(dir, 'mixed.tif');
  await writeFile(mixed, encodeTiff([
    { dtype: 'uint8', shape: [4, 4], data: new Uint8Array(16) },
    { dtype: 'uint8', shape: [4, 5], data: new Uint8Array(20) },
  ]));
  await assert.rejects(readFrames(mixed), isError('tiff-mixed-pages', mixed));
  // A compression utif2 would not decode exactly (here: JPEG) is refused, not guessed at.
  const jpeg = encodeTiff([{ dtype: 'uint8', shape: [4, 4], data: new Uint8Array(16) }]);
  const jv = new DataView(jpeg.buffer);
  const jifd = jv.getUint32(4, true);
  for (let i = 0; i < jv.getUint16(jifd, true); i++) {
    if (jv.getUint16(jifd + 2 + i * 12, true) === 259) jv.setUint16(jifd + 2 + i * 12 + 8, 7, true);
  }
  const jpegFile = join(dir, 'jpeg.tif');
  await writeFile(jpegFile, jpeg);
  await assert.rejects(readFrames(jpegFile), (e) => isError('tiff-unsupported', jpegFile)(e) && /compression 7/.test((e as Error).message));
  const text = join(dir, 'text.tif');
  await writeFile(text, 'plain text, not an image');
  await assert.rejects(readFrames(text), isError('tiff-bad-header', text));
});

test('checkConsistent names the file and both layouts', async (t) => {
  const dir = await tempDir(t);
  const a = join(dir, 'img_1.raw');
  const b = join(dir, 'img_2.raw');
  await writeFile(a, new Uint8Array(32));
  await writeFile(b, new Uint8Array(32));
  const first = await readFrames(a, { dtype: 'uint16', shape: [4, 4] });
  assert.equal(checkConsistent(first, await readFrames(b, { dtype: 'uint16', shape: [4, 4] })), undefined);
  const other = await readFrames(b, { dtype: 'uint8', shape: [4, 8] });
  const err = checkConsistent(first, other);
  assert.ok(err && isFurError(err, 'frame-mismatch'));
  assert.match(err.message, /img_2\.raw.*uint8\[4x8\].*img_1\.raw.*uint16\[4x4\]/);
  assert.equal(err.fields.file, b);
  // Opaque frames vary in length by nature; only the dtype must agree.
  const j1 = { ...first, dtype: 'bytes' as const, shape: [], data: new Uint8Array(5) };
  const j2 = { ...first, dtype: 'bytes' as const, shape: [], data: new Uint8Array(9) };
  assert.equal(checkConsistent(j1, j2), undefined);
  assert.ok(itemsize('bytes') === 1);
});
