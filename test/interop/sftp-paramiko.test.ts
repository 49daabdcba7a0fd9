/**
 * fur against a Paramiko SFTP server (python3-paramiko 2.12, the stack of archives such as ERDA).
 * Paramiko offers no fsync@openssh.com: fur says at start that a commit cannot be made durable
 * there, and deletes a source only once its frames read back intact from the server.
 *
 *  - the pipeline's cases (support/server-matrix.ts);
 *  - a server that stores other bytes than it was sent for one frame (paramiko_sftp.py --mangle:
 *    every write carrying a marker stores a changed marker and answers OK): with --delete-source,
 *    for every method, every other source is deleted and that one is kept and reported (exit 3),
 *    again when the run is repeated; h5py shows the stored frame differs from the source;
 *  - --delete-unsynced accepts the risk: every source deleted without a read-back.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { expectedFrame } from '../../src/source/camera.js';
import { sortSequence } from '../../src/source/sequence.js';
import { furBin, type Method } from '../pipeline/helpers.js';
import { h5pyFrames, python } from './support/h5py.js';
import { serverMatrix } from './support/server-matrix.js';
import { announced, startParamiko, type SftpServer } from './support/sftp-servers.js';

describe('Paramiko SFTP server', () => {
  const server = serverMatrix(() => startParamiko(), { durable: false });

  test('no fsync@openssh.com, no limits@openssh.com (32 KiB requests), no posix-rename announced', async () => {
    const { capabilities } = await announced(server());
    assert.equal(capabilities.fsync, false);
    assert.ok(capabilities.maxWriteSize! <= 32 * 1024, `${capabilities.maxWriteSize} bytes a request`);
    assert.equal(capabilities.atomicReplace, false);
  });
});

const MARKER = Buffer.from('FUR-MANGLE-ME-16');
const MANGLED = Buffer.from('FUR-MANGLED!!-16');
const FRAMES = 20;
/** the frame whose bytes are the marker, over and over: every write carrying it is changed */
const BAD = 7;
const SHAPE = [64, 64];

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const name = (i: number, ext: string) => `frame${String(i).padStart(3, '0')}.${ext}`;

/** Frame i: raw uint8 64×64 (or, for `bytes`, an opaque file of a length of its own). */
function frame(i: number, kind: 'raw' | 'bytes'): Buffer {
  const size = kind === 'raw' ? SHAPE[0]! * SHAPE[1]! : 3000 + 211 * i;
  if (i === BAD) return Buffer.alloc(size, MARKER);
  const bytes = Buffer.from(expectedFrame(900, i, 'uint8', [size]));
  assert.ok(!bytes.includes(MARKER.subarray(0, 8)), 'a good frame never carries the marker');
  return bytes;
}

/**
 * SHA-256 of every frame of an append file, read by h5py chunk by chunk as stored (read_direct_chunk:
 * no filter runs, so a chunk whose Fletcher-32 no longer matches is read all the same; its last 4
 * bytes are that checksum).
 */
async function storedFrameHashes(path: string): Promise<string[]> {
  return JSON.parse(await python(`
import sys, json, hashlib, h5py
with h5py.File(sys.argv[1], 'r') as f:
    d = f['/data']
    assert d.fletcher32 and d.compression is None
    row = d.dtype.itemsize * int(d.shape[1] * d.shape[2])
    out = []
    for start in range(0, d.shape[0], d.chunks[0]):
        mask, raw = d.id.read_direct_chunk((start, 0, 0))
        rows = min(d.chunks[0], d.shape[0] - start)
        out += [hashlib.sha256(raw[i * row:(i + 1) * row]).hexdigest() for i in range(rows)]
print(json.dumps(out))
`, [path])) as string[];
}

describe('Paramiko storing other bytes than it was sent: --delete-source deletes only what reads back intact', () => {
  let server: SftpServer;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fur-readback-'));
    server = await startParamiko({ mangle: { from: MARKER, to: MANGLED } });
  });
  after(async () => {
    await server?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  const cases: Array<{ method: Method; kind: 'raw' | 'bytes' }> = [
    { method: 'append', kind: 'raw' },
    { method: 'batches', kind: 'raw' },
    { method: 'batches', kind: 'bytes' },
    { method: 'files', kind: 'raw' },
  ];
  for (const { method, kind } of cases) {
    test(`${method}, ${kind === 'raw' ? 'raw uint8 64×64 frames' : 'opaque files (variable-length bytes)'}`, async () => {
      const ext = kind === 'raw' ? 'raw' : 'bin';
      const src = join(work, `src-${method}-${kind}`);
      mkdirSync(src);
      for (let i = 0; i < FRAMES; i++) writeFileSync(join(src, name(i, ext)), frame(i, kind));
      const sources = `${src}-copy`;
      cpSync(src, sources, { recursive: true });
      const target = join(server.root, `${method}-${kind}${method === 'append' ? '.h5' : ''}`);
      const read = kind === 'raw' ? ['--dtype', 'uint8', '--shape', SHAPE.join('x')] : ['--dtype', 'bytes'];
      const args = ['upload', src, server.url(target), '--method', method, '--batch', '5', '--delete-source', '--pattern', `frame*.${ext}`, ...read, ...server.flags];

      const r = await furBin(args);
      assert.equal(r.code, 3, `exit 3: a source kept\n${r.stderr}`);
      assert.match(r.stderr, /fur: warning: sftp:\/\/.*: a commit cannot be made durable here \(the server does not offer fsync@openssh\.com\).*a source is deleted only once its frames read back intact/);
      assert.match(r.stderr, new RegExp(`fur: kept ${src}/${name(BAD, ext)}: (its frames read back from sftp://.* differ from what was sent|the copy read back from sftp://.* differs from it), so it is not deleted`));
      assert.deepEqual(readdirSync(src), [name(BAD, ext)], 'every source but the one stored wrong is deleted');

      // the server did store other bytes for that frame, and only for that one
      const want = Array.from({ length: FRAMES }, (_, i) => sha(frame(i, kind)));
      let got: string[];
      if (method === 'files') {
        const stored = sortSequence(readdirSync(target));
        assert.deepEqual(stored, Array.from({ length: FRAMES }, (_, i) => name(i, ext)));
        got = stored.map((n) => sha(readFileSync(join(target, n))));
      } else if (method === 'append') {
        // Fletcher-32 is on for append: h5py refuses the changed chunk, so it is read as stored
        got = await storedFrameHashes(target);
      } else {
        const files = await h5pyFrames(sortSequence(readdirSync(target).filter((n) => n.endsWith('.h5'))).map((n) => join(target, n)));
        assert.deepEqual(files.flatMap((f) => f.names), Array.from({ length: FRAMES }, (_, i) => name(i, ext)));
        got = files.flatMap((f) => f.hashes);
      }
      assert.deepEqual(got.map((h, i) => h === want[i]), want.map((_, i) => i !== BAD), 'stored frames equal to the sources, but the one');

      // run again: the frame is committed under its name, but still does not read back intact
      const again = await furBin(args);
      assert.equal(again.code, 3, again.stderr);
      assert.match(again.stderr, new RegExp(`fur: kept ${src}/${name(BAD, ext)}: `));
      assert.deepEqual(readdirSync(src), [name(BAD, ext)], 'still kept');

      const v = await furBin(['verify', sources, server.url(target), '--method', method, '--pattern', `frame*.${ext}`, ...read, ...server.flags]);
      assert.equal(v.code, 3, v.stderr);
      assert.match(v.stderr, new RegExp(`fur verify: ${FRAMES - 1} equal, 1 different`));
    });
  }

  test('--delete-unsynced: every source deleted once committed, without a read-back', async () => {
    const src = join(work, 'src-unsynced');
    mkdirSync(src);
    for (let i = 0; i < FRAMES; i++) writeFileSync(join(src, name(i, 'raw')), frame(i, 'raw'));
    const r = await furBin(['upload', src, server.url(join(server.root, 'unsynced.h5')), '--batch', '5', '--delete-source', '--delete-unsynced',
      '--pattern', 'frame*.raw', '--dtype', 'uint8', '--shape', SHAPE.join('x'), ...server.flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /a commit cannot be made durable here .*--delete-unsynced: sources are deleted once committed, without reading their frames back/);
    assert.deepEqual(readdirSync(src), [], 'every source deleted, the one stored wrong too: the risk accepted');
  });
});
