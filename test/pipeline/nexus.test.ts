/**
 * The files `append` and `batches` make describe themselves: the NeXus layout (the default) with
 * its times, the source's TIFF tags, the user's --attr and --metadata with their types and units,
 * image and dimension-scale attributes; --layout flat and a continued file keeping its layout;
 * bad values refused before anything is sent; variable-length frames, which carry no Fletcher-32,
 * checked by their SHA-256. Read back by HDF5 2.0 (h5wasm).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeTiff, type TiffTags } from '../../src/source/writers/tiff.js';
import { expectedFrame } from '../../src/source/camera.js';
import { dataset, FILTER, h5wasmRead, valueBytes, valueStrings, type H5Doc, type H5Group } from '../support/h5wasm.js';
import { assertCapture, cli, openDest, readFlags, readH5, readStored, scratch, writeFrames, type Capture, type Method } from './helpers.js';
import { openS3Dest, useTestAwsEnv } from './s3-dest.js';

useTestAwsEnv();

const SHAPE = [6, 8];

/** TIFF files the way an instrument writes them: DateTime one second apart, a description, a resolution */
async function tiffCapture(dir: string, files: number, first = 0, rgb = false): Promise<{ mtimes: number[]; taken: number[] }> {
  const mtimes: number[] = [];
  const taken: number[] = [];
  for (let i = first; i < first + files; i++) {
    const shape = rgb ? [...SHAPE, 3] : SHAPE;
    const data = expectedFrame(90, i, 'uint16', shape);
    const tags: TiffTags = {
      description: 'exposure 0.5 s', software: 'simcam 2.1', dateTime: `2024:06:01 12:34:${String(10 + i).padStart(2, '0')}`,
      xResolution: [300, 1], yResolution: [150, 2], resolutionUnit: 3,
    };
    const path = join(dir, `img_${String(i).padStart(4, '0')}.tif`);
    await writeFile(path, encodeTiff([{ dtype: 'uint16', shape, data, tags }]));
    const mtime = 1_717_245_000 + i * 7;
    await utimes(path, mtime, mtime);
    mtimes.push(mtime);
    taken.push(new Date(2024, 5, 1, 12, 34, 10 + i).getTime() / 1000);
  }
  return { mtimes, taken };
}

const group = (doc: H5Doc, p: string) => doc.objects[p] as H5Group;
const attr = (doc: H5Doc, p: string, name: string) => (doc.objects[p] as H5Group).attrs[name];
const floats = (b: Uint8Array) => Array.from(new Float64Array(b.slice().buffer));

describe('the NeXus layout', () => {
  for (const method of ['append', 'batches'] as const) {
    test(`${method}: NXentry with start and end time, NXdata naming the frames, /data a link to them, per-frame times with units, TIFF tags`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      const { mtimes, taken } = await tiffCapture(cam, 5);
      const r = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, '--batch', '3']);
      assert.equal(r.code, 0, r.stderr);
      const files = method === 'append' ? [dest.local(method, 'run')] : ['img_0000.h5', 'img_0003.h5'].map((n) => join(dest.local(method, 'run'), n));
      let row = 0;
      for (const file of files) {
        const doc = await h5wasmRead(file);
        assert.deepEqual(doc.objects['/data'], { kind: 'softlink', target: '/entry/data/data' });
        assert.equal(attr(doc, '/', 'default')!.value, 'entry');
        assert.equal(attr(doc, '/entry', 'NX_class')!.value, 'NXentry');
        assert.equal(attr(doc, '/entry', 'default')!.value, 'data');
        assert.equal(attr(doc, '/entry/instrument', 'NX_class')!.value, 'NXinstrument');
        assert.equal(attr(doc, '/entry/instrument/detector', 'NX_class')!.value, 'NXdetector');
        assert.deepEqual(doc.objects['/entry/instrument/detector/data'], { kind: 'softlink', target: '/entry/data/data' });
        const nxdata = group(doc, '/entry/data');
        assert.equal(nxdata.attrs.NX_class!.value, 'NXdata');
        assert.equal(nxdata.attrs.signal!.value, 'data');
        assert.deepEqual(nxdata.attrs.axes!.value, ['frame', '.', '.']);
        assert.equal(nxdata.attrs.frame_indices!.value, 0);
        const data = dataset(doc, '/entry/data/data');
        const n = data.shape![0]!;
        assert.equal(Buffer.compare(Buffer.from(valueBytes(data)), Buffer.concat(Array.from({ length: n }, (_, i) => Buffer.from(expectedFrame(90, row + i, 'uint16', SHAPE))))), 0, 'the frames');
        // the image convention, the TIFF tags of the first file
        for (const [k, v] of Object.entries({ CLASS: 'IMAGE', IMAGE_SUBCLASS: 'IMAGE_GRAYSCALE', IMAGE_VERSION: '1.2', interpretation: 'image', tiff_image_description: 'exposure 0.5 s', tiff_software: 'simcam 2.1', tiff_datetime: `2024:06:01 12:34:${10 + row}`, tiff_resolution_unit: 'centimeter' })) {
          assert.equal(data.attrs[k]?.value, v, k);
        }
        assert.equal(data.attrs.tiff_x_resolution!.value, 300);
        assert.equal(data.attrs.tiff_y_resolution!.value, 75);
        // per frame: when its file was completed (mtime) and when it was acquired (DateTime), in seconds since 1970
        const rows = (p: string) => floats(valueBytes(dataset(doc, p)));
        assert.deepEqual(rows('/entry/data/frame_mtime'), mtimes.slice(row, row + n));
        assert.deepEqual(rows('/entry/data/frame_time'), taken.slice(row, row + n));
        for (const p of ['frame_mtime', 'frame_time']) assert.equal(dataset(doc, `/entry/data/${p}`).attrs.units!.value, 'seconds since 1970-01-01 00:00:00 UTC');
        assert.deepEqual(Array.from(new BigInt64Array(valueBytes(dataset(doc, '/frame')).slice().buffer), Number), Array.from({ length: n }, (_, i) => i));
        assert.deepEqual(valueStrings(dataset(doc, '/entry/start_time')), [new Date(taken[row]! * 1000).toISOString()]);
        assert.deepEqual(valueStrings(dataset(doc, '/entry/end_time')), [new Date(taken[row + n - 1]! * 1000).toISOString()]);
        // every axis has its scale: the frame numbers, and dimensions only for the image axes
        assert.deepEqual(data.attrs.DIMENSION_LIST!.value, ['/frame', '/y', '/x']);
        for (const p of ['frame_name', 'frame_page', 'frame_mtime', 'frame_time']) assert.deepEqual(dataset(doc, `/entry/data/${p}`).attrs.DIMENSION_LIST!.value, ['/frame'], p);
        assert.deepEqual(dataset(doc, '/entry/data/frame_sha256').attrs.DIMENSION_LIST!.value, ['/frame', '/sha256_byte']);
        assert.equal(dataset(doc, '/frame').attrs.CLASS!.value, 'DIMENSION_SCALE');
        assert.match(String(dataset(doc, '/x').attrs.NAME!.value), /^This is a netCDF dimension but not a netCDF variable\. +8$/);
        row += n;
      }
      assert.equal(row, 5);
    });
  }

  test('append to S3: the entry spans every commit\'s frames, the first file\'s tags are written once', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openS3Dest(t);
    const { taken } = await tiffCapture(cam, 10);
    const r = await cli(['upload', cam, d.url('append', 'run'), '--batch', '4', ...d.flags]);
    assert.equal(r.code, 0, r.stderr);
    const doc = await h5wasmRead(await d.download(d.key('append', 'run')));
    assert.deepEqual(valueStrings(dataset(doc, '/entry/start_time')), [new Date(taken[0]! * 1000).toISOString()]);
    assert.deepEqual(valueStrings(dataset(doc, '/entry/end_time')), [new Date(taken[9]! * 1000).toISOString()]);
    assert.deepEqual(floats(valueBytes(dataset(doc, '/entry/data/frame_time'))), taken);
    assert.equal(dataset(doc, '/data').attrs.tiff_datetime!.value, '2024:06:01 12:34:10');
  });

  test('colour frames are IMAGE_TRUECOLOR with a channel axis', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await tiffCapture(cam, 2, 0, true);
    assert.equal((await cli(['upload', cam, dest.url('append', 'run')])).code, 0);
    const data = dataset(await h5wasmRead(dest.local('append', 'run'), { values: false }), '/data');
    assert.equal(data.attrs.IMAGE_SUBCLASS!.value, 'IMAGE_TRUECOLOR');
    assert.equal(data.attrs.INTERLACE_MODE!.value, 'INTERLACE_PIXEL');
    assert.equal(data.attrs.interpretation!.value, 'rgba-image');
    assert.deepEqual(data.attrs.DIMENSION_LIST!.value, ['/frame', '/y', '/x', '/channel']);
  });

  test('--attr and --metadata: numbers as numbers, units beside them, groups under /entry or where a path says', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await tiffCapture(cam, 2);
    const meta = join(cam, '..', `meta-${process.pid}.json`);
    t.after(async () => { await writeFile(meta, '').catch(() => undefined); });
    await writeFile(meta, JSON.stringify({
      sample: { NX_class: 'NXsample', name: 'lysozyme', temperature: { value: 295.5, units: 'K' }, counts: [1, 2, 3], tags: ['a', 'b'], cooled: true },
      operator: 'Ada',
      '/entry/instrument/detector': { description: 'a simulated detector', distance: { value: 120, units: 'mm' } },
    }));
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--metadata', meta,
      '--attr', 'exposure_time=0.5 s', '--attr', 'frames_per_trigger=4', '--attr', 'gain=2.0', '--attr', 'note="42"', '--attr', 'title=a run, with commas = and spaces',
      '--attr', 'sample/holder=cu-grid', '--attr', 'operator=Grace']);
    assert.equal(r.code, 0, r.stderr);
    const doc = await h5wasmRead(dest.local('append', 'run'), { values: false });
    const entry = group(doc, '/entry').attrs;
    assert.deepEqual(entry.exposure_time, { dtype: '<f8', shape: [], value: 0.5 });
    assert.equal(entry.exposure_time_units!.value, 's');
    assert.deepEqual(entry.frames_per_trigger, { dtype: '<i8', shape: [], value: 4 });
    assert.deepEqual(entry.gain, { dtype: '<f8', shape: [], value: 2 });
    assert.equal(entry.note!.value, '42');
    assert.equal(entry.note!.string?.vlen, true);
    assert.equal(entry.title!.value, 'a run, with commas = and spaces');
    assert.equal(entry.operator!.value, 'Grace', 'an --attr replaces the same name from --metadata');
    const sample = group(doc, '/entry/sample').attrs;
    assert.equal(sample.NX_class!.value, 'NXsample');
    assert.equal(sample.name!.value, 'lysozyme');
    assert.equal(sample.holder!.value, 'cu-grid');
    assert.deepEqual(sample.temperature, { dtype: '<f8', shape: [], value: 295.5 });
    assert.equal(sample.temperature_units!.value, 'K');
    assert.deepEqual(sample.counts, { dtype: '<i8', shape: [3], value: [1, 2, 3] });
    assert.deepEqual(sample.tags!.value, ['a', 'b']);
    assert.deepEqual(sample.cooled, { dtype: '|u1', shape: [], value: 1 });
    const detector = group(doc, '/entry/instrument/detector').attrs;
    assert.equal(detector.description!.value, 'a simulated detector');
    assert.deepEqual(detector.distance, { dtype: '<i8', shape: [], value: 120 });
    assert.equal(detector.distance_units!.value, 'mm');
  });

  test('bad values are refused before anything is sent, naming the option (exit 2)', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await tiffCapture(cam, 1);
    const bad = join(cam, '..', `bad-${process.pid}.json`);
    const write = (text: string) => writeFile(bad, text);
    const cases: [string[], () => Promise<void>, RegExp][] = [
      [['--attr', 'operator'], async () => {}, /^fur: --attr: 'operator' is not NAME=VALUE/],
      [['--attr', '=5'], async () => {}, /^fur: --attr: '=5' is not NAME=VALUE/],
      [['--attr', 'sample//name=x'], async () => {}, /^fur: --attr sample\/\/name: 'sample\/\/name' is not a path of names/],
      [['--attr', 'NX_class=NXfoo'], async () => {}, /^fur: --attr NX_class: \/entry@NX_class is written by fur itself; choose another name/],
      [['--attr', '/entry/data/signal=other'], async () => {}, /^fur: --attr \/entry\/data\/signal: \/entry\/data@signal is written by fur itself/],
      [['--metadata', join(cam, 'missing.json')], async () => {}, /^fur: --metadata \S+missing\.json: cannot read \(ENOENT\)/],
      [['--metadata', bad], () => write('{"a": '), /^fur: --metadata \S+: not JSON/],
      [['--metadata', bad], () => write('[1, 2]'), /^fur: --metadata \S+: must hold a JSON object/],
      [['--metadata', bad], () => write('{"sample": {"mass": null}}'), /^fur: --metadata \S+: sample\.mass: null is not a value fur stores/],
      [['--metadata', bad], () => write('{"grid": [[1, 2], [3, 4]]}'), /^fur: --metadata \S+: grid: an array must hold numbers only or strings only/],
      [['--metadata', bad], () => write('{"/entry/data": {"axes": ["a"]}}'), /^fur: --metadata \S+: \/entry\/data\.axes: \/entry\/data@axes is written by fur itself/],
      [['--layout', 'tree'], async () => {}, /--layout.*tree/],
    ];
    for (const [flags, prepare, message] of cases) {
      await prepare();
      const r = await cli(['upload', cam, dest.url('append', 'run'), ...flags]);
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.split('\n').find((l) => l.startsWith('fur:') || l.startsWith('error:'))!, message, flags.join(' '));
      assert.equal(existsSync(dest.local('append', 'run')), false, 'nothing written');
    }
  });
});

describe('--layout flat, and a continued file keeping its layout', () => {
  const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [5, 7], seed: 91, frames: 8 };

  for (const method of ['append', 'batches'] as Method[]) {
    test(`${method}: --layout flat keeps the frames at /data and the per-frame datasets beside them, as before the NeXus layout`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      await writeFrames(cam, c, 0, c.frames);
      const r = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, '--layout', 'flat', '--batch', '4', ...readFlags(c), '--attr', 'operator=Ada']);
      assert.equal(r.code, 0, r.stderr);
      const stored = await readStored(dest, method, 'run');
      assertCapture(stored, c);
      for (const doc of stored.docs) {
        assert.deepEqual(Object.keys(doc.objects).sort(), ['/', '/data', '/frame_mtime', '/frame_name', '/frame_page', '/frame_sha256']);
        assert.equal(dataset(doc, '/data').kind, 'dataset');
        assert.equal(attr(doc, '/', 'fur_layout')!.value, 'flat');
        assert.equal(attr(doc, '/', 'operator')!.value, 'Ada');
      }
    });
  }

  test('append: a flat file continued by a run that asks for NeXus stays flat; a NeXus file continued with --layout flat stays NeXus', async (t) => {
    for (const [first, second] of [['flat', 'nexus'], ['nexus', 'flat']] as const) {
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      await writeFrames(cam, c, 0, 4);
      assert.equal((await cli(['upload', cam, dest.url('append', 'run'), '--layout', first, '--batch', '4', ...readFlags(c)])).code, 0);
      await writeFrames(cam, c, 4, c.frames);
      const r = await cli(['upload', cam, dest.url('append', 'run'), '--layout', second, '--batch', '4', ...readFlags(c)]);
      assert.equal(r.code, 0, r.stderr);
      const stored = await readH5(dest.local('append', 'run'));
      assertCapture(stored, c);
      const doc = stored.docs[0]!;
      assert.equal(attr(doc, '/', 'fur_layout')!.value, first);
      assert.equal(doc.objects['/data']!.kind, first === 'flat' ? 'dataset' : 'softlink');
      if (first === 'nexus') {
        // the frame numbers and the end time went on with the second run
        assert.deepEqual(Array.from(new BigInt64Array(valueBytes(dataset(doc, '/frame')).slice().buffer), Number), [0, 1, 2, 3, 4, 5, 6, 7]);
        const mtimes = floats(valueBytes(dataset(doc, '/entry/data/frame_mtime')));
        assert.deepEqual(valueStrings(dataset(doc, '/entry/end_time')), [new Date(Math.max(...mtimes) * 1000).toISOString()]);
        assert.deepEqual(valueStrings(dataset(doc, '/entry/start_time')), [new Date(Math.min(...mtimes) * 1000).toISOString()]);
      }
    }
  });
});

describe('variable-length frames: no Fletcher-32, their SHA-256 instead', () => {
  test('append of JPEG files: no checksum filter on the frames; a byte changed inside a stored JPEG is found by fur verify, with and without the sources', async (t) => {
    const c: Capture = { format: 'jpeg', dtype: 'uint8', shape: [16, 16, 3], seed: 92, frames: 6 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await writeFrames(cam, c, 0, c.frames);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--batch', '3', ...readFlags(c)]);
    assert.equal(r.code, 0, r.stderr);
    const file = dest.local('append', 'run');
    const doc = await h5wasmRead(file, { values: false });
    assert.deepEqual(dataset(doc, '/data').filters, [], 'no filter on variable-length frames, not even in append');
    assert.ok(dataset(doc, '/entry/data/frame_mtime').filters.every((f) => f.id !== FILTER.fletcher32));
    assertCapture(await readH5(file), c);

    // flip a byte in the middle of the fourth JPEG, where it is stored
    const victim = await readFile(join(cam, (await readH5(file)).names[3]!));
    const bytes = await readFile(file);
    const at = bytes.indexOf(victim);
    assert.ok(at > 0, 'the JPEG is stored as it was');
    bytes[at + (victim.length >> 1)] ^= 0x20;
    await writeFile(file, bytes);

    for (const args of [['verify', file], ['verify', cam, dest.url('append', 'run')]]) {
      const v = await cli(args.map((a) => (a === file ? dest.url('append', 'run') : a)));
      assert.equal(v.code, 3, v.stderr);
      assert.match(v.stderr, /fur verify: 5 equal, 1 different/);
      assert.match(v.stderr, /differs: frame000004\.jpg frame 0/);
      assert.doesNotMatch(v.stderr, /checksum failed/);
    }
  });
});
