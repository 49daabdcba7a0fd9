/**
 * The pipeline's cases against one server fur's authors did not write, the same for every
 * server: for each method it carries, a finished capture uploaded with --delete-source and read
 * back by h5py (or byte for byte, for `files`), `fur verify` with and without the sources and a
 * byte changed on the server found and named, and a run killed with SIGKILL after its second
 * commit — each source then either stored intact or still local, none stored twice — then resumed
 * (batches: beside leftover temporaries a killed run leaves, a sidecar's being a dot file, which
 * the resumed run removes and reports): every frame exactly once. Whether the run says at start
 * that commits cannot be made durable there is checked too.
 *
 * Data is small (36 frames of 48×64 uint16 TIFF, batches of 6): the point is the server's
 * behaviour, not its speed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cameraFileName, encodeFile, expectedFrame } from '../../../src/source/camera.js';
import { sortSequence } from '../../../src/source/sequence.js';
import { furBin, localFrames, readFlags, runKilledAfter, writeFrames, type Capture, type Method } from '../../pipeline/helpers.js';
import { h5pyFrames, python } from './h5py.js';

export interface MatrixServer {
  readonly name: string;
  /** a folder of this machine for the test's files; the server stores there under the same path */
  readonly root: string;
  /** the URL of a path on this machine, through the server */
  url(path: string): string;
  /** the CLI flags that log in */
  readonly flags: string[];
  dispose(): Promise<void>;
}

export interface MatrixOptions {
  /** the methods the server carries (default all three) */
  methods?: Method[];
  /** the server makes a commit durable (fsync@openssh.com): fur says nothing about it at start */
  durable: boolean;
}

const CAPTURE: Capture = { format: 'tiff', dtype: 'uint16', shape: [48, 64], seed: 401, frames: 36 };
const BATCH = '6';
const NOT_DURABLE = /fur: warning: .*: a commit cannot be made durable here \(/;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const names = () => Array.from({ length: CAPTURE.frames }, (_, i) => cameraFileName(i + 1, CAPTURE.format));
const frameBytes = (i: number) => expectedFrame(CAPTURE.seed, i, 'uint16', CAPTURE.shape);
const sourceFile = (i: number) => encodeFile(CAPTURE.format, 'uint16', CAPTURE.shape, [frameBytes(i)]);

/** The HDF5 files a method stored under `target` (not its temporaries). */
function storedFiles(method: Method, target: string): string[] {
  if (method === 'append') return existsSync(target) ? [target] : [];
  return existsSync(target) ? sortSequence(readdirSync(target).filter((n) => n.endsWith('.h5'))).map((n) => join(target, n)) : [];
}

/**
 * The destination holds every frame of the capture exactly once, in order, each equal to the
 * camera's: h5py (HDF5 1.10) hashes what append and batches stored; `files` is compared byte for byte.
 */
async function assertStoredOnce(method: Method, target: string): Promise<void> {
  if (method === 'files') {
    const stored = sortSequence(readdirSync(target));
    assert.deepEqual(stored, names(), 'one file per source, nothing else');
    stored.forEach((n, i) => assert.equal(sha(readFileSync(join(target, n))), sha(sourceFile(i)), `${n} byte for byte`));
    return;
  }
  const paths = storedFiles(method, target);
  if (method === 'batches') assert.deepEqual(readdirSync(target).filter((n) => n.endsWith('.fur-partial')), [], 'no temporaries left');
  const files = await h5pyFrames(paths);
  assert.deepEqual(files.flatMap((f) => f.names), names(), 'every frame once, in order');
  const want = names().map((_, i) => sha(frameBytes(i)));
  const wrong = files.flatMap((f) => f.hashes).map((h, i) => (h === want[i] ? -1 : i)).filter((i) => i >= 0);
  assert.deepEqual(wrong, [], 'frames that differ from the camera\'s');
  for (const f of files) assert.deepEqual(f.shape.slice(1), CAPTURE.shape);
}

/**
 * What a run killed at any moment must leave: each source either still in `src` or stored intact
 * (its frame hashed by h5py, or its file byte for byte), and no frame stored twice.
 */
async function assertEachSourceSafe(method: Method, target: string, src: string): Promise<void> {
  const local = new Set(await localFrames(src));
  const stored = new Map<string, string>();
  if (method === 'files') {
    // the capture's own names only: the folder also holds temporaries and the killed run's lease
    const files = new Set(names());
    for (const n of existsSync(target) ? readdirSync(target).filter((x) => files.has(x)) : []) stored.set(n, sha(readFileSync(join(target, n))));
  } else {
    for (const f of await h5pyFrames(storedFiles(method, target))) {
      f.names.forEach((n, k) => {
        assert.ok(!stored.has(n), `${n} stored twice`);
        stored.set(n, f.hashes[k]!);
      });
    }
  }
  names().forEach((n, i) => {
    if (local.has(n)) return;
    assert.ok(stored.has(n), `${n}: deleted locally, not stored`);
    assert.equal(stored.get(n), sha(method === 'files' ? sourceFile(i) : frameBytes(i)), `${n}: deleted locally, stored with other bytes`);
  });
}

/** Changes one byte of frame `frame` where the server stored it (unfiltered or Fletcher-32 chunks, or the file itself for `files`). */
async function changeFrame(method: Method, target: string, frame: number): Promise<void> {
  const name = names()[frame]!;
  let file: string;
  let at: number;
  if (method === 'files') {
    file = join(target, name);
    at = readFileSync(file).length - 7;
  } else {
    const out = await python(`
import sys, json, h5py
for path in sys.argv[2:]:
    with h5py.File(path, 'r') as f:
        # /data, or in a NeXus file the link to /entry/data/data, beside which the per-frame datasets are
        link = f.get('/data', getlink=True)
        at = link.path if isinstance(link, h5py.SoftLink) else '/data'
        names = [n.decode() if isinstance(n, bytes) else n for n in f[at[:at.rfind('/')] + '/frame_name'][:]]
        if sys.argv[1] not in names: continue
        d = f[at]
        assert not d.compression, 'compressed chunks'
        row = names.index(sys.argv[1])
        start = row // d.chunks[0] * d.chunks[0]
        info = d.id.get_chunk_info_by_coord((start,) + (0,) * (d.ndim - 1))
        print(json.dumps([path, info.byte_offset + (row - start) * d[0].nbytes + 7]))
`, [name, ...storedFiles(method, target)]);
    [file, at] = JSON.parse(out) as [string, number];
  }
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.from([readFileSync(file)[at]! ^ 0xff]), 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

/**
 * Registers the matrix for one server, started once for all its cases (and those the caller adds
 * in the same suite: the returned function gives the server while they run).
 */
export function serverMatrix<S extends MatrixServer>(start: () => Promise<S>, opts: MatrixOptions): () => S {
  const methods = opts.methods ?? ['append', 'batches', 'files'];
  let server: S;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fur-matrix-'));
    server = await start();
  });
  after(async () => {
    await server?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  /** a camera folder with the whole capture; the target path on the server for this case */
  const prepare = async (method: Method, label: string) => {
    const src = join(work, `${label}-${method}`);
    mkdirSync(src);
    await writeFrames(src, CAPTURE, 0, CAPTURE.frames);
    const target = join(server.root, `${label}-${method}${method === 'append' ? '.h5' : ''}`);
    return { src, target, url: server.url(target) };
  };
  const upload = (src: string, url: string, method: Method) =>
    ['upload', src, url, '--method', method, '--batch', BATCH, '--delete-source', ...readFlags(CAPTURE), ...server.flags];

  for (const method of methods) {
    describe(`${method}`, () => {
      test('upload --delete-source; every frame read back; verify with and without the sources', async () => {
        const { src, target, url } = await prepare(method, 'upload');
        const sources = join(work, `kept-${method}`);
        cpSync(src, sources, { recursive: true });
        const r = await furBin(upload(src, url, method));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`fur: ${CAPTURE.frames.toLocaleString('en-US')} frames from ${CAPTURE.frames.toLocaleString('en-US')} files, .* \\[finished\\]`));
        assert.equal(NOT_DURABLE.test(r.stderr), !opts.durable, `says at start whether a commit can be made durable:\n${r.stderr}`);
        assert.deepEqual(await localFrames(src), [], 'every source deleted');
        await assertStoredOnce(method, target);

        const against = await furBin(['verify', sources, url, '--method', method, ...readFlags(CAPTURE), ...server.flags]);
        assert.equal(against.code, 0, against.stderr);
        assert.match(against.stderr, new RegExp(`fur verify: ${CAPTURE.frames} equal, 0 different, 0 files missing at the destination, 0 remote frames without a local source`));
        if (method !== 'files') {
          const self = await furBin(['verify', url, '--method', method, ...server.flags]);
          assert.equal(self.code, 0, self.stderr);
          assert.match(self.stderr, new RegExp(`fur verify: ${CAPTURE.frames} equal, 0 different`));
        }

        // one byte of frame 15 changed on the server: found, and the frame named
        await changeFrame(method, target, 14);
        const changed = await furBin(['verify', ...(method === 'files' ? [sources] : []), url, '--method', method, ...readFlags(CAPTURE), ...server.flags]);
        assert.equal(changed.code, 3, changed.stderr);
        assert.match(changed.stderr, new RegExp(`fur verify: ${CAPTURE.frames - 1} equal, 1 different`));
        assert.match(changed.stderr, new RegExp(`differs: ${names()[14]!.replace('.', '\\.')} frame 0`));
      });

      test('killed with SIGKILL after its second commit, then resumed: every frame exactly once', async () => {
        const { src, target, url } = await prepare(method, 'killed');
        const killed = await runKilledAfter(upload(src, url, method), 2);
        assert.ok(killed.killed, `the run was killed mid-run:\n${killed.stderr}`);
        assert.ok((await localFrames(src)).length > 0, 'killed before every source was committed');
        await assertEachSourceSafe(method, target, src);
        if (method === 'batches') {
          // what a run killed while writing leaves too: a batch file and its sidecar (a dot file) under temporary names
          writeFileSync(join(target, 'frame999991.h5.fur-partial'), 'half a batch');
          writeFileSync(join(target, '.frame999991.h5.kerchunk.json.fur-partial'), '{');
        }
        const r = await furBin(upload(src, url, method));
        assert.equal(r.code, 0, r.stderr);
        if (method === 'batches') {
          const swept = /fur: removed (\d+) temporary files an interrupted run left \(/.exec(r.stderr);
          assert.ok(swept && Number(swept[1]) >= 2, `the two temporaries put there (and any the kill left) removed and reported:\n${r.stderr}`);
        }
        assert.deepEqual(await localFrames(src), [], 'every source deleted after the resume');
        await assertStoredOnce(method, target);
      });
    });
  }
  return () => server;
}
