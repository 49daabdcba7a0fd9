/**
 * The pipeline's cases against FTPS servers fur's authors did not write (ftps-servers.ts): the real
 * `fur` binary, what arrived read in place by h5py (HDF5 1.10.8). For each server:
 *  - `batches` with --delete-source, killed (SIGKILL) twice mid-run and run again to the end:
 *    after every kill each source frame is either committed intact remotely or still on the
 *    local disk (FTP has no fsync: nothing more is promised), and at the end every frame is
 *    stored exactly once and no temporary is left (a sidecar's is a dot file: listings must show it);
 *  - `fur verify` with the sources and without them (the recorded hashes), and a changed byte
 *    on the server found and named;
 *  - `files` with --delete-source, byte for byte, and verified against the sources.
 * Frames are small (9 KB): the cases are about the protocol, not throughput.
 */
import assert from 'node:assert/strict';
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cameraFileName, expectedFrame } from '../../src/source/camera.js';
import { sortSequence } from '../../src/source/sequence.js';
import { FUR_BIN, runKilledAfter, writeFrames } from '../pipeline/helpers.js';
import { run } from '../support/run.js';
import { assertFiles, assertFrames, frameDtype, pattern, sha, type Cam } from './ftps-s3-check.js';
import { FTPS_SERVERS, startFtpsServer, type FtpsServer } from './ftps-servers.js';
import { h5pyFrames, python } from './support/h5py.js';

const work = mkdtempSync(join(tmpdir(), 'fur-interop-ftps-field-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** 48×64×3 uint8 TIFF frames */
const cam = (frames: number, seed: number): Cam => ({ format: 'tiff', dtype: 'uint8', shape: [48, 64, 3], frames, fps: 0, seed });

/** A camera folder holding the capture, and a copy of it that no run deletes from (for verify). */
async function capture(c: Cam): Promise<{ src: string; ref: string }> {
  const src = mkdtempSync(join(work, 'camera-'));
  await writeFrames(src, { ...c, dtype: 'uint8' }, 0, c.frames);
  const ref = mkdtempSync(join(work, 'ref-'));
  cpSync(src, ref, { recursive: true });
  return { src, ref };
}

function fur(args: string[]) {
  return run(process.execPath, [FUR_BIN, ...args], { timeoutMs: 300_000 });
}

/** Finished batch files (not temporaries) in a folder, in order. */
function finished(dir: string): string[] {
  return existsSync(dir) ? sortSequence(readdirSync(dir).filter((n) => n.endsWith('.h5'))).map((n) => join(dir, n)) : [];
}

/**
 * Every frame of the capture is stored at most once, and each is stored intact or its source file
 * is still in `src`: what a run killed at any moment must leave behind.
 */
async function assertEachFrameSafe(c: Cam, src: string, dir: string): Promise<{ stored: number; local: number }> {
  const files = await h5pyFrames(finished(dir));
  const stored = new Map<string, string>();
  for (const f of files) {
    f.names.forEach((n, i) => {
      assert.ok(!stored.has(n), `${n} stored twice`);
      stored.set(n, f.hashes[i]!);
    });
  }
  const local = new Set(readdirSync(src));
  for (let i = 0; i < c.frames; i++) {
    const name = cameraFileName(i + 1, c.format);
    if (local.has(name)) continue;
    assert.ok(stored.has(name), `${name}: deleted locally but not stored`);
    assert.equal(stored.get(name), sha(expectedFrame(c.seed, i, frameDtype(c), c.shape)), `${name}: deleted locally, stored with other bytes`);
  }
  return { stored: stored.size, local: [...local].filter((n) => n.startsWith('frame')).length };
}

/** Where row `row` of /data starts in an HDF5 file (unfiltered chunks), from h5py. */
async function rowOffset(file: string, row: number): Promise<number> {
  const out = await python(`
import sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    d = f['/data']
    assert not d.compression and not d.fletcher32, 'filtered chunks'
    row = int(sys.argv[2])
    start = row // d.chunks[0] * d.chunks[0]
    info = d.id.get_chunk_info_by_coord((start,) + (0,) * (d.ndim - 1))
    print(info.byte_offset + (row - start) * d[0].nbytes)
`, [file, String(row)]);
  return Number(out.trim());
}

for (const name of FTPS_SERVERS) {
  describe(`FTPS against ${name}`, () => {
    let server: FtpsServer;
    before(async () => { server = await startFtpsServer(name); });
    after(async () => { await server?.stop(); });

    const c = cam(150, 710);
    let batches: { ref: string; dir: string } | undefined;

    test('batches, --delete-source, killed twice mid-run, then resumed: each frame committed intact or still local; at the end every frame once', async () => {
      const { src, ref } = await capture(c);
      const args = ['upload', src, server.url('batches'), '--method', 'batches', '--batch', '10', '--delete-source', '--pattern', pattern(c), ...server.flags];
      const dir = join(server.home, 'batches');
      const kills: string[] = [];
      for (const commits of [1, 3]) {
        const delayMs = Math.floor(Math.random() * 30);
        const { killed, stderr } = await runKilledAfter(args, commits, { delayMs });
        const { stored, local } = await assertEachFrameSafe(c, src, dir);
        kills.push(`${commits} commits + ${delayMs} ms: ${killed ? 'killed' : 'had ended'}, ${stored} frames stored, ${local} local`);
        assert.ok(stored < c.frames, `the kill came before the end (${stored} frames stored):\n${stderr}`);
      }
      // what a run killed while writing leaves too: a batch file and a sidecar (a dot file) under temporary names
      writeFileSync(join(dir, 'frame999991.h5.fur-partial'), 'half a batch');
      writeFileSync(join(dir, '.frame999991.h5.kerchunk.json.fur-partial'), '{');
      const r = await fur(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /fur: reading what earlier runs stored: (\d+) of \1 files \((\d+) leftover temporaries removed\)/);
      process.stderr.write(`# ${name}: ${kills.join('; ')}\n`);
      const files = finished(dir);
      assertFrames(await h5pyFrames(files), c);
      assert.deepEqual(readdirSync(src), [], 'every source deleted once committed');
      const left = readdirSync(dir).filter((n) => !n.endsWith('.h5') && !n.endsWith('.h5.kerchunk.json'));
      assert.deepEqual(left, [], 'no temporary left behind');
      batches = { ref, dir };
    });

    test('verify with the sources and without; a changed byte is found and named', async () => {
      assert.ok(batches, 'the batches case ran');
      const withSources = await fur(['verify', batches.ref, server.url('batches'), '--method', 'batches', '--pattern', pattern(c), ...server.flags]);
      assert.equal(withSources.code, 0, withSources.stderr);
      assert.match(withSources.stderr, /fur verify: 150 equal, 0 different, 0 files missing at the destination, 0 remote frames without a local source/);
      const alone = await fur(['verify', server.url('batches'), '--method', 'batches', ...server.flags]);
      assert.equal(alone.code, 0, alone.stderr);
      assert.match(alone.stderr, /fur verify: 150 equal, 0 different/);

      // frame 25 is row 5 of the third batch file
      const file = finished(batches.dir)[2]!;
      const at = (await rowOffset(file, 5)) + 7;
      const fd = openSync(file, 'r+');
      try {
        const b = Buffer.alloc(1);
        b[0] = readFileSync(file)[at]! ^ 0xff;
        writeSync(fd, b, 0, 1, at);
      } finally { closeSync(fd); }
      const changed = await fur(['verify', server.url('batches'), '--method', 'batches', ...server.flags]);
      assert.equal(changed.code, 3, changed.stderr);
      assert.match(changed.stderr, /fur verify: 149 equal, 1 different/);
      assert.match(changed.stderr, /differs: frame000026\.tif frame 0/);
    });

    test('files, --delete-source: byte for byte, verified against the sources', async () => {
      const f = cam(20, 711);
      const { src, ref } = await capture(f);
      const r = await fur(['upload', src, server.url('files'), '--method', 'files', '--delete-source', '--pattern', pattern(f), ...server.flags]);
      assert.equal(r.code, 0, r.stderr);
      const dir = join(server.home, 'files');
      assertFiles(sortSequence(readdirSync(dir)), (n) => readFileSync(join(dir, n)), f);
      assert.deepEqual(readdirSync(src), []);
      const v = await fur(['verify', ref, server.url('files'), '--method', 'files', '--pattern', pattern(f), ...server.flags]);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stderr, /fur verify: 20 equal, 0 different, 0 files missing/);
    });
  });
}
