/**
 * Cut anywhere: an append workload (commits, partial chunks, unfiltered, split-frame and
 * filtered datasets, a vlen dataset, a chunk index that grows a level, attributes, a group and
 * dataset created mid-way; and what a NeXus file adds: a soft link to the frames, dimension
 * scales attached to them, a value kept in its header and replaced at each commit, as
 * /entry/end_time is) is run against a sink that silently drops every write after the
 * k-th, for k across the whole write stream. Each truncated file is read by h5py (HDF5 1.10.8),
 * h5dump and fur's own reader.
 *
 * What each must show follows from the write log alone: an object shows the state of the last
 * commit whose write of its object header was kept (a group: its links and attributes; a
 * dataset: its extent, attributes and every value of those rows). Before the first commit's
 * superblock write is kept there is no HDF5 file yet: opening fails with "file signature not
 * found", and h5dump exits non-zero.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H5File, MemorySink } from '../../src/hdf5/index.js';
import { assertSameStructure, type H5Doc, type H5Object } from '../support/h5json.js';
import { run } from '../../harness/run.js';
import { dimensionOnlyName } from '../../src/hdf5/index.js';
import { runCase, type Case, type Expected, type Op } from '../hdf5/cases.js';
import { H5DUMP, h5env } from './support/h5py.js';
import { h5dumpAll, h5pyBatch } from './support/hdf5-batch.js';

const work = mkdtempSync(join(tmpdir(), 'fur-hdf5-cut-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A MemorySink that keeps the first `keep` writes and silently drops the rest, logging all. */
class CutSink extends MemorySink {
  readonly log: { offset: number; length: number }[] = [];
  constructor(private readonly keep: number) { super(); }
  override async write(offset: number, data: Uint8Array): Promise<void> {
    const i = this.log.length;
    this.log.push({ offset, length: data.length });
    if (i < this.keep) await super.write(offset, data);
  }
  /** cut like a write: once the stream is cut, nothing else reaches the file either */
  override async truncate(size: number): Promise<void> {
    if (this.log.length <= this.keep) await super.truncate(size);
  }
}

const spec = (path: string, dtype: string, frame: number[], chunks: number[], more: object = {}): Op =>
  ({ op: 'dataset', ds: { path, dtype, frame, kind: 'growable', chunks, seed: path.length * 7919 + 17, ...more } });
const append = (paths: string[], rows: number): Op[] => paths.map((path) => ({ op: 'append', path, rows }));

/** a value kept in its header (as a NeXus file's /entry/end_time), replaced before the commits that follow */
const endTime = (seed: number): Op => ({ op: 'compact', ds: { path: '/end_time', dtype: 'float64', frame: [], kind: 'compact', rows: 1, seed } });

const BASE = ['/frames', '/split', '/zipped', '/names', '/ticks', '/frame'];
const OPS: Op[] = [
  spec('/frames', 'uint8', [4, 5], [3, 4, 5]), // whole-row chunks: partial chunks completed in place
  spec('/split', 'int16', [3, 4], [2, 2, 3]), // frames split over 4 chunks
  spec('/zipped', 'float32', [6], [4, 6], { filters: [{ id: 'shuffle' }, { id: 'deflate', level: 5 }, { id: 'fletcher32' }] }),
  spec('/names', 'vlen-str', [], [5]),
  spec('/ticks', '>u2', [], [1]), // one chunk per row: the index grows from one level to two
  spec('/frame', 'int64', [], [8]),
  { op: 'dataset', ds: { path: '/y', dtype: 'float32', frame: [], kind: 'fixed', rows: 4, chunks: [4], seed: 5 } },
  { op: 'softlink', path: '/data', target: '/frames' },
  {
    op: 'scales',
    scales: [{ path: '/frame', name: 'frame' }, { path: '/y', name: dimensionOnlyName(4) }],
    attach: [['/frames', ['/frame', '/y']], ['/names', ['/frame']]],
  },
  endTime(1),
  ...append(BASE, 2),
  { op: 'commit' },
  ...append(BASE, 1),
  { op: 'attr', path: '/frames', name: 'exposure', attr: { value: 0.25, expect: { dtype: '<f8', shape: [], value: 0.25 } } },
  endTime(2),
  { op: 'commit' },
  ...append(BASE, 5),
  endTime(3),
  ...append(['/ticks'], 30),
  { op: 'commit' },
  { op: 'group', path: '/late/sub' },
  spec('/late/sub/data', 'int32', [2], [2, 2], { filters: [{ id: 'deflate', level: 1 }] }),
  ...append(['/late/sub/data'], 3),
  ...append(BASE, 1),
  { op: 'commit' },
  ...append([...BASE, '/late/sub/data'], 4),
  ...append(['/ticks'], 40),
  { op: 'attr', path: '/', name: 'run', attr: { value: 'cut test', expect: { dtype: '|O', string: { encoding: 'utf-8', vlen: true }, shape: [], value: 'cut test' } } },
  { op: 'commit', publishLast: '/frames' },
  ...append([...BASE, '/late/sub/data'], 2),
  endTime(4),
  { op: 'commit' },
  ...append([...BASE, '/late/sub/data'], 3),
  { op: 'commit' },
];

// a little EOF headroom (the EOF moves now and then) and none at all (it moves at every commit,
// and the metadata region overflows into new regions at the end of the data)
const WORKLOADS: Case[] = [
  { name: 'headroom 4 KiB', file: { metaReserve: 3000, eofHeadroom: 4096 }, ops: OPS },
  { name: 'no headroom, small metadata region', file: { metaReserve: 512, eofHeadroom: 0 }, ops: OPS },
];

interface CommitInfo { start: number; end: number; doc: H5Doc }

/** What a reader sees after the first `k` writes, from the write log and each commit's model. */
function expectedAt(k: number, log: { offset: number }[], commits: CommitInfo[], headers: Map<string, number>): Expected | null {
  const stateOf = (path: string): { o: H5Object; doc: H5Doc } | undefined => {
    const address = headers.get(path)!;
    let found: { o: H5Object; doc: H5Doc } | undefined;
    for (const [c, info] of commits.entries()) {
      for (let i = info.start; i < Math.min(info.end, k); i++) {
        if (log[i]!.offset === address) found = { o: commits[c]!.doc.objects[path]!, doc: commits[c]!.doc };
      }
    }
    return found;
  };
  const root = stateOf('/');
  if (!root || !log.slice(0, k).some((w) => w.offset === 0)) return null;
  const objects: H5Doc['objects'] = {};
  const visit = (path: string, { o, doc }: { o: H5Object; doc: H5Doc }) => {
    objects[path] = o;
    if (o.kind !== 'group') return;
    for (const m of o.members) {
      const child = path === '/' ? `/${m}` : `${path}/${m}`;
      // a soft link is a message of its group's header: it is as the group's state says
      const link = doc.objects[child];
      if (link?.kind === 'softlink') { objects[child] = link; continue; }
      const s = stateOf(child);
      if (!s) throw new Error(`k=${k}: ${path} links ${m} before its header is written`);
      visit(child, s);
    }
  };
  visit('/', root);
  return { doc: { reader: `expected at k=${k}`, objects }, datasets: [] };
}

for (const WORKLOAD of WORKLOADS) describe(`cut anywhere (${WORKLOAD.name}): every prefix of the write stream is a valid file showing a committed state`, () => {
  let W = 0;
  let log: { offset: number; length: number }[] = [];
  const commits: CommitInfo[] = [];
  const headers = new Map<string, number>();
  let ks: number[] = [];
  const files = new Map<number, string>();
  let firstSuperblock = -1;

  before(async () => {
    // the counting run: every write, and which commit each belongs to
    let sink!: CutSink;
    let start = 0;
    const res = await runCase(WORKLOAD, undefined, {
      makeSink: () => (sink = new CutSink(Infinity)),
      afterCreate: (_f, exp) => { commits.push({ start: 0, end: sink.log.length, doc: exp.doc }); },
      beforeCommit: () => { start = sink.log.length; },
      afterCommit: (file: H5File, exp) => {
        commits.push({ start, end: sink.log.length, doc: exp.doc });
        for (const p of file.paths()) headers.set(p, file.get(p)!.header.address);
      },
    });
    // close() commits once more (nothing new) and trims: count it as part of the last commit
    commits[commits.length - 1]!.end = sink.log.length;
    W = sink.log.length;
    log = sink.log;
    firstSuperblock = log.findIndex((w) => w.offset === 0);
    if (process.env.FUR_CUT_DEBUG) {
      const names = new Map([...headers].map(([p, a]) => [a, p]));
      log.forEach((w, i) => console.log(`# ${i} @${w.offset} +${w.length} ${names.get(w.offset) ?? ''} ${commits.map((c, j) => (i >= c.start && i < c.end ? `commit ${j}` : '')).join('')}`));
    }
    assert.ok(res.bytes.length > 0);

    // every k when the stream is short; otherwise ≥ 150 spread over it plus every commit's edges ±2
    const set = new Set<number>();
    if (W <= 400) for (let k = 0; k <= W; k++) set.add(k);
    else {
      for (let i = 0; i <= 160; i++) set.add(Math.round((i * W) / 160));
      for (const c of commits) for (const e of [c.start, c.end]) for (let d = -2; d <= 2; d++) set.add(e + d);
      for (let k = 0; k <= firstSuperblock + 2; k++) set.add(k);
    }
    ks = [...set].filter((k) => k >= 0 && k <= W).sort((a, b) => a - b);

    for (const k of ks) {
      const cut = await runCase(WORKLOAD, undefined, { makeSink: () => (sink = new CutSink(k)) });
      assert.equal(sink.log.length, W, `k=${k}: the workload wrote the same stream`);
      const f = join(work, `${WORKLOAD.file!.eofHeadroom}-cut-${k}.h5`);
      writeFileSync(f, cut.bytes);
      files.set(k, f);
    }
  });

  it(`checks the cuts (all k when W ≤ 400)`, () => {
    console.log(`# ${W} writes in ${commits.length} commits (incl. create); ${ks.length} cuts checked; first superblock write #${firstSuperblock}`);
    assert.ok(commits.length >= 8);
    assert.ok(ks.length >= Math.min(W + 1, 150));
    // the index of /ticks grew a level during the workload
    assert.ok(commits.some((c) => ((c.doc.objects['/ticks'] as { shape?: number[] } | undefined)?.shape?.[0] ?? 0) > 64));
  });

  it('h5py opens every cut after the first superblock write and shows exactly the committed state; before it, no file', async () => {
    const order = ks.map((k) => files.get(k)!);
    const described = await h5pyBatch(order);
    const seen = new Set<string>();
    for (const [i, k] of ks.entries()) {
      const d = described[i]!;
      const exp = expectedAt(k, log, commits, headers);
      if (!exp) {
        assert.ok(k <= firstSuperblock, `k=${k}`);
        assert.equal(d.ok, false, `k=${k}: no superblock yet, yet h5py opened it`);
        if (!d.ok) {
          assert.equal(d.stage, 'open');
          assert.match(d.error, /^OSError: .*file signature not found/, `k=${k}`);
        }
        continue;
      }
      if (!d.ok) assert.fail(`k=${k}: h5py could not ${d.stage} the file: ${d.error}`);
      try {
        assertSameStructure(exp.doc, d.doc);
      } catch (e) {
        throw new Error(`k=${k} of ${W}: ${(e as Error).message}`, { cause: e });
      }
      const frames = d.doc.objects['/frames'];
      seen.add(frames?.kind === 'dataset' ? String(frames.shape![0]) : '-');
    }
    // the cuts saw the frames dataset at every committed length (and before it existed)
    assert.ok(seen.size >= 7, `distinct /frames states: ${[...seen]}`);
  });

  it("fur's reader reopens every cut with the same rows", async () => {
    for (const k of ks) {
      const exp = expectedAt(k, log, commits, headers);
      if (!exp) continue;
      const sink = new MemorySink();
      const { readFile } = await import('node:fs/promises');
      await sink.write(0, new Uint8Array(await readFile(files.get(k)!)));
      const f = await H5File.open(sink).catch((e) => { throw new Error(`k=${k}: fur could not open the cut: ${(e as Error).message}`); });
      assert.deepEqual([...f.paths(), ...f.softLinks().map((l) => l.path)].sort(), Object.keys(exp.doc.objects).sort(), `k=${k}`);
      for (const [path, o] of Object.entries(exp.doc.objects)) {
        if (o.kind === 'softlink') assert.equal(f.resolve(path), o.target, `k=${k} ${path}`);
        if (o.kind !== 'dataset') continue;
        const compact = f.compact(path);
        if (compact) {
          assert.equal(o.value?.kind, 'bytes', `k=${k} ${path}`);
          if (o.value?.kind === 'bytes') assert.ok(Buffer.from(compact.data).equals(Buffer.from(o.value.base64, 'base64')), `k=${k} ${path}: value`);
          continue;
        }
        const ds = f.dataset(path);
        assert.deepEqual(ds.shape, o.shape, `k=${k} ${path}`);
        if (o.value?.kind === 'bytes') {
          const le = Buffer.from(o.value.base64, 'base64');
          const got = Buffer.from(await ds.read());
          if (ds.type.class === 'int' && ds.type.bigEndian) for (let j = 0; j < got.length; j += ds.type.size) got.subarray(j, j + ds.type.size).reverse();
          assert.ok(got.equals(le), `k=${k} ${path}: values`);
        } else if (o.value?.kind === 'strings') {
          const got = (await ds.readVlen()).map((b) => Buffer.from(b).toString('utf8'));
          assert.deepEqual(got, o.value.items, `k=${k} ${path}`);
        }
      }
    }
  });

  it('h5dump reads every cut that has a superblock, and refuses the ones before', async () => {
    const openable = ks.filter((k) => k > firstSuperblock).map((k) => files.get(k)!);
    assert.equal(await h5dumpAll(openable), openable.length);
    for (const k of ks.filter((x) => x <= firstSuperblock)) {
      const r = await run(H5DUMP, [files.get(k)!], { env: h5env() });
      assert.notEqual(r.code, 0, `k=${k}`);
    }
  });
});
