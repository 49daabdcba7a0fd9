/**
 * What makes fur's files describe themselves, at the writer: attributes libhdf5 counts, soft
 * links, values kept in headers, dimension scales, and variable-length data never given a
 * checksum that would cover its heap references only. Read back by HDF5 2.0 (h5wasm) and fur.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import h5wasm, { type Dataset as WasmDataset } from 'h5wasm/node';
import { attachScales, dimensionOnlyName, fixedString, H5File, MemorySink } from '../../src/hdf5/index.js';
import { MSG, readHeader } from '../../src/hdf5/object-header.js';

const work = mkdtempSync(join(tmpdir(), 'fur-self-describing-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function saved(sink: MemorySink, name: string): Promise<string> {
  const p = join(work, name);
  writeFileSync(p, sink.bytes());
  return p;
}

describe('files that describe themselves (writer)', () => {
  it('refuses Fletcher-32 on variable-length data, as libhdf5 does', async () => {
    const f = await H5File.create(new MemorySink());
    for (const dtype of ['vlen-bytes', 'vlen-str']) {
      assert.throws(() => f.createDataset(`/${dtype}`, { dtype, shape: [0], maxshape: [null], chunks: [4], filters: [{ id: 'fletcher32' }] }), /Fletcher-32 cannot protect variable-length data/);
    }
    // other filters stay allowed, and numbers keep their checksum
    f.createDataset('/zipped', { dtype: 'vlen-bytes', shape: [0], maxshape: [null], chunks: [4], filters: [{ id: 'deflate', level: 1 }] });
    f.createDataset('/numbers', { dtype: 'uint8', shape: [0], maxshape: [null], chunks: [4], filters: [{ id: 'fletcher32' }] });
  });

  it('keeps a value in its header, replaced at each commit and read back by HDF5 2.0', async () => {
    const sink = new MemorySink();
    const f = await H5File.create(sink);
    f.writeCompact('/entry/start_time', '2024-06-01T12:00:00.000Z');
    f.writeCompact('/entry/end_time', '2024-06-01T12:00:00.000Z');
    f.writeCompact('/entry/count', 7);
    await f.commit();
    const before = sink.bytes().length;
    f.writeCompact('/entry/end_time', '2024-06-01T13:30:00.250Z');
    await f.close();
    // a changed value is a rewritten header, not new data
    assert.ok(sink.bytes().length - before < 4096, `${sink.bytes().length - before} bytes added`);
    await h5wasm.ready;
    const h = new h5wasm.File(await saved(sink, 'compact.h5'), 'r');
    const get = (p: string) => h.get(p) as WasmDataset;
    try {
      assert.equal(get('/entry/start_time').value, '2024-06-01T12:00:00.000Z');
      assert.equal(get('/entry/end_time').value, '2024-06-01T13:30:00.250Z');
      assert.deepEqual(get('/entry/end_time').shape, []);
      assert.equal(Number(get('/entry/count').value), 7);
    } finally { h.close(); }
    const again = await H5File.open(sink);
    assert.equal(Buffer.from(again.compact('/entry/end_time')!.data).toString('utf8').replace(/\0+$/, ''), '2024-06-01T13:30:00.250Z');
  });

  it('follows soft links when reading and keeps them when the file is continued', async () => {
    const sink = new MemorySink();
    let f = await H5File.create(sink);
    const d = f.createDataset('/entry/data/data', { dtype: 'uint8', shape: [0, 2], maxshape: [null, 2], chunks: [4, 2] });
    f.softLink('/data', '/entry/data/data');
    await d.append(new Uint8Array([1, 2, 3, 4]), 2);
    await f.close();
    f = await H5File.open(sink);
    assert.equal(f.resolve('/data'), '/entry/data/data');
    assert.deepEqual(f.softLinks(), [{ path: '/data', target: '/entry/data/data' }]);
    await f.dataset('/data').append(new Uint8Array([5, 6]), 1);
    f.setAttr('/', 'touched', 1); // the root group's header is rewritten: its link must survive
    await f.close();
    await h5wasm.ready;
    const h = new h5wasm.File(await saved(sink, 'links.h5'), 'r');
    try {
      assert.equal(h.get_link('/data'), '/entry/data/data');
      assert.deepEqual([...(h.get('/data') as WasmDataset).value as Uint8Array], [1, 2, 3, 4, 5, 6]);
    } finally { h.close(); }
  });

  it('attaches dimension scales that HDF5 2.0 finds, and reads their references back as paths', async () => {
    const sink = new MemorySink();
    const f = await H5File.create(sink);
    const data = f.createDataset('/entry/data/data', { dtype: 'uint16', shape: [0, 2, 3], maxshape: [null, 2, 3], chunks: [2, 2, 3] });
    const frame = f.createDataset('/frame', { dtype: 'int64', shape: [0], maxshape: [null], chunks: [8] });
    f.createDataset('/y', { dtype: 'float32', shape: [2], chunks: [2] });
    f.createDataset('/x', { dtype: 'float32', shape: [3], chunks: [3] });
    f.setAttr('/entry/data/data', 'CLASS', fixedString('IMAGE'));
    attachScales(f, [{ path: '/frame', name: 'frame' }, { path: '/y', name: dimensionOnlyName(2) }, { path: '/x', name: dimensionOnlyName(3) }],
      new Map([['/entry/data/data', ['/frame', '/y', '/x']]]));
    await data.append(new Uint16Array(12), 2);
    await frame.append(new BigInt64Array([0n, 1n]));
    await f.close();
    const M = await h5wasm.ready;
    const h = new h5wasm.File(await saved(sink, 'scales.h5'), 'r');
    try {
      assert.deepEqual([0, 1, 2].map((i) => [...M.get_attached_scales(h.file_id, '/entry/data/data', i)]), [['/frame'], ['/y'], ['/x']]);
      assert.equal(M.get_scale_name(h.file_id, '/frame'), 'frame');
      assert.equal(M.get_scale_name(h.file_id, '/x'), 'This is a netCDF dimension but not a netCDF variable.         3');
    } finally { h.close(); }
    const again = await H5File.open(sink, { readOnly: true });
    const list = again.attributes('/entry/data/data').find((a) => a.name === 'DIMENSION_LIST')!;
    assert.deepEqual(await again.readAttribute(list), [['/frame'], ['/y'], ['/x']]);
  });

  it('places the strings of a commit\'s attributes in one heap collection, not one each', async () => {
    const sink = new MemorySink();
    const f = await H5File.create(sink, { metaReserve: 1 << 20 });
    for (let i = 0; i < 40; i++) f.setAttr('/', `name_${i}`, `value ${i}`);
    await f.close();
    const collections = Buffer.from(sink.bytes()).toString('latin1').split('GCOL').length - 1;
    assert.equal(collections, 1);
    const again = await H5File.open(sink);
    assert.equal(await again.readAttribute(again.attributes('/').find((a) => a.name === 'name_39')!), 'value 39');
  });

  it('publishes at the next commit a value or attribute changed while a commit publishes (the next batch being appended)', async () => {
    const sink = new MemorySink();
    const f = await H5File.create(sink);
    f.writeCompact('/entry/end_time', 'one');
    f.setAttr('/entry', 'note', 'one');
    await f.commit({ onSealed: () => { f.writeCompact('/entry/end_time', 'two'); f.setAttr('/entry', 'note', 'two'); } });
    await f.commit();
    await f.close();
    const g = await H5File.open(sink, { readOnly: true });
    assert.equal(Buffer.from(g.compact('/entry/end_time')!.data).toString('utf8').replace(/\0+$/, ''), 'two');
    assert.equal(await g.readAttribute(g.attributes('/entry').find((a) => a.name === 'note')!), 'two');
  });

  it('adds the Attribute Info message to a header written without one when the file is continued', async () => {
    const sink = new MemorySink();
    let f = await H5File.create(sink);
    f.setAttr('/', 'a', 1);
    f.createDataset('/d', { dtype: 'uint8', shape: [0], maxshape: [null], chunks: [4] });
    f.setAttr('/d', 'b', 2);
    await f.close();
    // as written before fur wrote Attribute Info messages: each one turned into free space (NIL)
    const bytes = sink.bytes();
    const stripped = new MemorySink();
    await stripped.write(0, bytes);
    f = await H5File.open(stripped, { readOnly: true });
    const read = async (o: number, n: number) => stripped.bytes().subarray(o, o + n);
    for (const p of ['/', '/d']) {
      const at = f.addressOf(p);
      const h = await readHeader(read, at);
      assert.equal(h.messages.filter((m) => m.type === MSG.attributeInfo).length, 1);
      await stripAttributeInfo(stripped, at);
      assert.equal((await readHeader(read, at)).messages.filter((m) => m.type === MSG.attributeInfo).length, 0);
    }
    f = await H5File.open(stripped);
    await f.dataset('/d').append(new Uint8Array([1]), 1);
    await f.close();
    const g = await H5File.open(stripped, { readOnly: true });
    for (const p of ['/', '/d']) {
      const h = await readHeader(read, g.addressOf(p));
      assert.equal(h.messages.filter((m) => m.type === MSG.attributeInfo).length, 1, p);
    }
  });
});

/** Turn a header's Attribute Info message into a NIL message and fix its checksum. */
async function stripAttributeInfo(sink: MemorySink, at: number): Promise<void> {
  const { lookup3 } = await import('../../src/hdf5/checksum.js');
  const b = sink.bytes();
  const size = new DataView(b.buffer, b.byteOffset).getUint32(at + 6, true);
  const block = b.slice(at, at + 10 + size + 4);
  for (let p = 10; p + 4 <= 10 + size;) {
    const type = block[p]!;
    const len = block[p + 1]! | (block[p + 2]! << 8);
    if (type === MSG.attributeInfo) block[p] = MSG.nil;
    p += 4 + len;
  }
  new DataView(block.buffer).setUint32(10 + size, lookup3(block.subarray(0, 10 + size)), true);
  await sink.write(at, block);
}
