/**
 * fur's files as the tools of the field read them (Debian: HDF5 1.10.8, h5py, silx, nexus-tools,
 * xarray with h5netcdf, netCDF-C through netCDF4-python): every attribute counted and kept by
 * h5repack (both modes), h5diff finding no difference from an h5py-written file of the same
 * content, silx finding the default NXdata, nxsummary and nxdir listing the entry, xarray and
 * netCDF-C seeing named dimensions, and the capture's metadata, TIFF tags and times read back by
 * h5py with their types and units. For append files (fresh and continued after a second run)
 * and batch files.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { expectedFrame, runCamera } from '../../src/source/camera.js';
import { encodeTiff } from '../../src/source/writers/tiff.js';
import { encodeNpy } from '../../src/source/writers/npy.js';
import { cli } from '../pipeline/helpers.js';
import { run, runOk } from '../../harness/run.js';
import { h5env, python, PYTHON, SUPPORT_DIR } from './support/h5py.js';

const SHAPE = [12, 10];
const SEED = 77;

/** a TIFF capture: frames i in [from, to), DateTime one second apart, mtimes 7 s apart */
async function tiffs(dir: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const path = join(dir, `img_${String(i).padStart(4, '0')}.tif`);
    const tags = { description: `frame ${i}`, software: 'simcam 2.1', dateTime: `2024:06:01 08:00:${String(i).padStart(2, '0')}`, xResolution: [72, 1] as [number, number], yResolution: [72, 1] as [number, number], resolutionUnit: 2 };
    await writeFile(path, encodeTiff([{ dtype: 'uint16', shape: SHAPE, data: expectedFrame(SEED, i, 'uint16', SHAPE), tags }]));
    await utimes(path, 1_717_000_000 + 7 * i, 1_717_000_000 + 7 * i);
  }
}

/** frames [from, to) as .npy, the reference the readers' values are compared with */
async function expected(dir: string, from: number, to: number): Promise<string> {
  const p = join(dir, `expected-${from}-${to}.npy`);
  const data = Buffer.concat(Array.from({ length: to - from }, (_, i) => Buffer.from(expectedFrame(SEED, from + i, 'uint16', SHAPE))));
  await writeFile(p, encodeNpy('uint16', [to - from, ...SHAPE], data));
  return p;
}

interface Check {
  attrs: Record<string, [number, number]>;
  silx: { signal: string; valid: boolean; equal: boolean; interpretation: string } | null;
  xarray: { dims: string[]; equal: boolean; frame: number[]; variables: string[] };
  netcdf: { dims: string[]; root_dims: string[]; equal: boolean };
  h5py_dims: string[][];
  h5ds_attached: boolean[];
}

async function readersOf(file: string, frames: string): Promise<Check> {
  const r = await runOk(PYTHON, [join(SUPPORT_DIR, 'nexus_check.py'), file, frames], { env: h5env(), timeoutMs: 300_000 });
  return JSON.parse(r.stdout.toString().trim().split('\n').pop()!) as Check;
}

/** every attribute of every object (values included; references as the paths they name), and every soft link */
async function describeAttributes(file: string): Promise<Record<string, unknown>> {
  const out = await python(`
import sys, json, h5py, numpy as np
def value(obj, name):
    aid = obj.attrs.get_id(name)
    t = aid.get_type()
    v = obj.attrs[name]
    if t.get_class() == h5py.h5t.VLEN and t.get_super().get_class() == h5py.h5t.REFERENCE:
        return [[obj.file[r].name for r in refs] for refs in v]
    if t.get_class() == h5py.h5t.COMPOUND:
        return [[obj.file[r].name, int(d)] for r, d in v]
    if isinstance(v, np.ndarray):
        return [x.decode() if isinstance(x, bytes) else x.item() if hasattr(x, 'item') else x for x in v.reshape(-1)]
    return v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, 'item') else v
res = {}
with h5py.File(sys.argv[1], 'r') as f:
    def visit(name, obj):
        res['/' + name] = {k: [str(obj.attrs.get_id(k).dtype), value(obj, k)] for k in obj.attrs}
    res['/'] = {k: [str(f.attrs.get_id(k).dtype), value(f, k)] for k in f.attrs}
    f.visititems(visit)
    def links(g, path):
        for k in g:
            l = g.get(k, getlink=True)
            p = path.rstrip('/') + '/' + k
            if isinstance(l, h5py.SoftLink): res['link ' + p] = l.path
            elif isinstance(g[k], h5py.Group): links(g[k], p)
    links(f, '/')
print(json.dumps(res, default=str))
`, [file]);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('NeXus files read by the tools of the field (HDF5 1.10.8)', () => {
  let dir: string;
  const files: { what: string; file: string; frames: string; from: number; count: number }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fur-nexus-interop-'));
    const cam = join(dir, 'cam');
    const out = join(dir, 'out');
    await runOk('mkdir', ['-p', cam, join(out, 'batches')]);
    await writeFile(join(dir, 'meta.json'), JSON.stringify({
      sample: { NX_class: 'NXsample', name: 'lysozyme', temperature: { value: 100.5, units: 'K' } },
      '/entry/instrument/detector': { description: 'simulated', distance: { value: 250, units: 'mm' } },
    }));
    const meta = ['--metadata', join(dir, 'meta.json'), '--attr', 'exposure_time=0.25 s', '--attr', 'frames_per_trigger=2', '--attr', 'operator=Ada'];
    // an append file continued by a second run: the frames, the times and the frame numbers go on
    await tiffs(cam, 0, 9);
    let r = await cli(['upload', cam, `file://${join(out, 'run.h5')}`, '--batch', '4', ...meta]);
    assert.equal(r.code, 0, r.stderr);
    await tiffs(cam, 9, 14);
    r = await cli(['upload', cam, `file://${join(out, 'run.h5')}`, '--batch', '4', ...meta]);
    assert.equal(r.code, 0, r.stderr);
    files.push({ what: 'append (continued)', file: join(out, 'run.h5'), frames: await expected(dir, 0, 14), from: 0, count: 14 });
    r = await cli(['upload', cam, `file://${join(out, 'batches')}`, '--method', 'batches', '--batch', '6', ...meta]);
    assert.equal(r.code, 0, r.stderr);
    const batchFiles = (await readdir(join(out, 'batches'))).filter((n) => n.endsWith('.h5')).sort();
    assert.deepEqual(batchFiles, ['img_0000.h5', 'img_0006.h5', 'img_0012.h5']);
    for (const [i, n] of batchFiles.entries()) {
      const count = Math.min(14, 6 * i + 6) - 6 * i;
      files.push({ what: `batch ${n}`, file: join(out, 'batches', n), frames: await expected(dir, 6 * i, 6 * i + count), from: 6 * i, count });
    }
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test('silx finds the default NXdata and its signal equals the frames; xarray (h5netcdf) and netCDF-C see named dimensions, no phony ones', async () => {
    for (const f of files) {
      const c = await readersOf(f.file, f.frames);
      assert.deepEqual(c.silx, { signal: '/entry/data/data', valid: true, equal: true, interpretation: 'image' }, f.what);
      assert.deepEqual(c.xarray.dims, ['frame', 'y', 'x'], f.what);
      assert.equal(c.xarray.equal, true, `${f.what}: xarray values`);
      assert.deepEqual(c.xarray.frame, Array.from({ length: c.xarray.frame.length }, (_, i) => i), f.what);
      assert.ok(!c.xarray.variables.some((v) => v.startsWith('phony')), f.what);
      assert.deepEqual(c.netcdf, { dims: ['frame', 'y', 'x'], root_dims: ['frame', 'y', 'x'], equal: true }, f.what);
      assert.deepEqual(c.h5py_dims, [['/frame'], ['/y'], ['/x']], f.what);
      assert.deepEqual(c.h5ds_attached, [true, true, true], f.what);
      // libhdf5 counts every attribute it lists, on every group and dataset
      for (const [path, [counted, listed]] of Object.entries(c.attrs)) assert.equal(counted, listed, `${f.what} ${path}`);
      assert.ok(Object.values(c.attrs).filter(([n]) => n > 0).length >= 15, `${f.what}: objects with attributes`);
    }
  });

  test('the kerchunk sidecar follows the layout: xarray through it sees /entry/data with the frames and their dimensions', async () => {
    for (const f of files) {
      const out = await python(`
import sys, json, fsspec, xarray as xr, numpy as np
m = fsspec.filesystem('reference', fo=sys.argv[1]).get_mapper('')
with xr.open_dataset(m, engine='zarr', group='entry/data', consolidated=False) as ds:
    print(json.dumps({'dims': list(ds['data'].dims), 'equal': bool(np.array_equal(ds['data'].values, np.load(sys.argv[2]))),
                      'mtime': ds['frame_mtime'].dims[0]}))
`, [`${f.file}.kerchunk.json`, f.frames]);
      assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { dims: ['frame', 'y', 'x'], equal: true, mtime: 'frame' }, f.what);
    }
  });

  test('h5repack and h5repack -L keep every attribute and link', async () => {
    for (const f of files) {
      const before = await describeAttributes(f.file);
      for (const mode of [[], ['-L']]) {
        const copy = `${f.file}.repacked${mode.join('')}.h5`;
        await runOk('/usr/bin/h5repack', [...mode, f.file, copy], { env: h5env() });
        assert.deepEqual(await describeAttributes(copy), before, `${f.what}: h5repack ${mode.join(' ')}`);
      }
    }
  });

  test('h5diff finds no difference between a fur file and an h5py-written file of the same data and attributes', async () => {
    for (const f of files) {
      const mirror = `${f.file}.h5py.h5`;
      await runOk(PYTHON, [join(SUPPORT_DIR, 'h5mirror.py'), f.file, mirror], { env: h5env() });
      const r = await run('/usr/bin/h5diff', [f.file, mirror], { env: h5env() });
      assert.equal(r.code, 0, `${f.what}: h5diff exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      // the mirror is complete: the same attributes, values, links
      assert.deepEqual(await describeAttributes(mirror), await describeAttributes(f.file), f.what);
    }
  });

  test('variable-length frames (JPEG files): silx finds the NXdata, its signal and xarray\'s values are the files\' bytes', async () => {
    const cam = join(dir, 'jpeg');
    await runOk('mkdir', ['-p', cam]);
    await runCamera({ dir: cam, format: 'jpeg', dtype: 'uint8', shape: [16, 16, 3], seed: 5, frames: 5 });
    const file = join(dir, 'out', 'jpeg.h5');
    const r = await cli(['upload', cam, `file://${file}`]);
    assert.equal(r.code, 0, r.stderr);
    const names = (await readdir(cam)).sort();
    const out = await python(`
import sys, json, h5py, numpy as np, silx.io, xarray as xr
from silx.io.nxdata import get_default
want = [open(p, 'rb').read() for p in sys.argv[2:]]
with silx.io.open(sys.argv[1]) as sf:
    d = get_default(sf)
    silx_ok = d is not None and d.is_valid and [bytes(x) for x in d.signal[()]] == want
with xr.open_dataset(sys.argv[1], engine='h5netcdf', group='/entry/data') as ds:
    xr_ok = list(ds['data'].dims) == ['frame'] and [bytes(x) for x in ds['data'].values] == want
print(json.dumps([bool(silx_ok), bool(xr_ok)]))
`, [file, ...names.map((n) => join(cam, n))]);
    assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), [true, true]);
  });

  test('nxsummary reports the entry\'s times; nxdir lists the entry, its groups and the detector', async () => {
    const f = files[0]!;
    const s = await runOk('/usr/bin/nxsummary', [f.file]);
    const text = s.stdout.toString();
    assert.match(text, /START TIME:2024-06-01T\d\d:00:00\.000Z/);
    assert.match(text, /END TIME:2024-06-01T\d\d:00:13\.000Z/);
    const d = await runOk('/usr/bin/nxdir', [f.file, '-p', '/entry']);
    assert.deepEqual(d.stdout.toString().trim().split('\n'), ['/entry/', '/entry/data/', '/entry/end_time[24]', '/entry/instrument/', '/entry/sample/', '/entry/start_time[24]']);
    const det = await runOk('/usr/bin/nxdir', [f.file, '-p', '/entry/instrument/detector']);
    assert.deepEqual(det.stdout.toString().trim().split('\n'), ['/entry/instrument/detector/', '/entry/instrument/detector/data[14,12,10]']);
  });

  test('--attr and --metadata read back from h5py with their types and units; TIFF tags and times are there', async () => {
    for (const f of [files[0]!, files[2]!]) {
      const out = await python(`
import sys, json, h5py, numpy as np, datetime
with h5py.File(sys.argv[1], 'r') as f:
    e = f['entry'].attrs
    s = f['entry/sample'].attrs
    d = f['entry/instrument/detector'].attrs
    data = f['data'].attrs
    res = {
        'exposure_time': [type(e['exposure_time']).__name__, float(e['exposure_time']), e['exposure_time_units']],
        'frames_per_trigger': [type(e['frames_per_trigger']).__name__, int(e['frames_per_trigger'])],
        'operator': e['operator'],
        'sample': [s['NX_class'], s['name'], type(s['temperature']).__name__, float(s['temperature']), s['temperature_units']],
        'distance': [type(d['distance']).__name__, int(d['distance']), d['distance_units'], d['description']],
        'tiff': [data['tiff_image_description'], data['tiff_software'], data['tiff_datetime'], float(data['tiff_x_resolution']), data['tiff_resolution_unit']],
        'image': [data['CLASS'].decode(), data['IMAGE_SUBCLASS'].decode()],
        'acquired': [datetime.datetime.fromtimestamp(t).strftime('%Y:%m:%d %H:%M:%S') for t in f['entry/data/frame_time'][()]],
        'completed': [float(t) for t in f['entry/data/frame_mtime'][()]],
        'units': [f['entry/data/frame_time'].attrs['units'], f['entry/data/frame_mtime'].attrs['units']],
        'start_end': [f['entry/start_time'][()].decode(), f['entry/end_time'][()].decode()],
    }
print(json.dumps(res))
`, [f.file]);
      const got = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown[]>;
      const n = f.count;
      assert.deepEqual(got.exposure_time, ['float64', 0.25, 's']);
      assert.deepEqual(got.frames_per_trigger, ['int64', 2]);
      assert.equal(got.operator, 'Ada');
      assert.deepEqual(got.sample, ['NXsample', 'lysozyme', 'float64', 100.5, 'K']);
      assert.deepEqual(got.distance, ['int64', 250, 'mm', 'simulated']);
      assert.deepEqual(got.tiff, [`frame ${f.from}`, 'simcam 2.1', `2024:06:01 08:00:${String(f.from).padStart(2, '0')}`, 72, 'inch']);
      assert.deepEqual(got.image, ['IMAGE', 'IMAGE_GRAYSCALE']);
      assert.deepEqual(got.acquired, Array.from({ length: n }, (_, i) => `2024:06:01 08:00:${String(f.from + i).padStart(2, '0')}`));
      assert.deepEqual(got.completed, Array.from({ length: n }, (_, i) => 1_717_000_000 + 7 * (f.from + i)));
      assert.deepEqual(got.units, ['seconds since 1970-01-01 00:00:00 UTC', 'seconds since 1970-01-01 00:00:00 UTC']);
      const at = (i: number) => new Date(2024, 5, 1, 8, 0, i).toISOString();
      assert.deepEqual(got.start_end, [at(f.from), at(f.from + n - 1)]);
    }
  });
});
