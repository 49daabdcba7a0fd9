/**
 * Proves the interop harness itself before any fur test leans on it: the two HDF5 oracles
 * agree value by value on a file the reference implementation wrote, h5dump accepts it and
 * rejects a damaged one, the live reader verifies a growing SWMR file (and catches wrong
 * rows), and the private OpenSSH server takes uploads, restarts, and stops.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertSameStructure, dataset, h5wasmRead, valueBytes, valueStrings, valueVlenBytes, type H5Doc } from '../support/h5wasm.js';
import { patternRows } from '../support/pattern.js';
import { h5dumpCheck, h5env, h5pyRead, PYTHON, python, startLiveReader, SUPPORT_DIR } from './support/h5py.js';
import { bannerArrives, sftpBatch, sshExec, startSshd, type Sshd } from '../../harness/sshd.js';

const work = mkdtempSync(join(tmpdir(), 'fur-harness-'));
after(() => rmSync(work, { recursive: true, force: true }));

// A file written by the reference implementation with the features fur writes: chunked
// frames with an unlimited first dimension and filters, strings of every kind, groups,
// a soft link, and attributes of the awkward kinds (int64 beyond 2^53, NaN, arrays).
const WRITE_SAMPLE = `
import sys, h5py, numpy as np
from pattern import pattern_rows
path = sys.argv[1]
with h5py.File(path, 'w', libver='latest') as f:
    f.attrs['title'] = 'harness sample'
    f.attrs['version'] = np.int64(2**60 + 1)
    f.attrs['gain'] = np.array([1.5, float('nan'), -0.25], dtype='<f4')
    f.attrs['fixed'] = np.bytes_('abc')
    fr = f.create_dataset('frames', data=pattern_rows(0, 10, 6 * 8, 7).reshape(10, 6, 8),
                          maxshape=(None, 6, 8), chunks=(4, 6, 8), compression='gzip', shuffle=True)
    fr.attrs['seed'] = 7
    fr.attrs['labels'] = ['x', 'y', 'z']
    g = f.create_group('meta/detector')
    g.attrs['temperature'] = np.float64(-40.5)
    g.create_dataset('counts', data=np.arange(12, dtype='<u2').reshape(3, 4) * 1000, chunks=(1, 4), fletcher32=True)
    g.create_dataset('big', data=np.array([-2**62, 0, 2**62 + 3], dtype='>i8'))
    g.create_dataset('scalar', data=np.float32(3.25))
    f.create_dataset('names', data=['frame_000.raw', 'frame_001.raw', 'ünïcode'], dtype=h5py.string_dtype())
    f.create_dataset('codes', data=np.array([b'AB', b'C', b''], dtype='S4'))
    vb = f.create_dataset('blobs', (3,), dtype=h5py.vlen_dtype(np.dtype('u1')))
    vb[0] = np.array([1, 2, 3], dtype='u1'); vb[1] = np.array([], dtype='u1'); vb[2] = np.array([255, 0], dtype='u1')
    f['latest'] = h5py.SoftLink('/frames')
`;

describe('HDF5 oracles', () => {
  const file = join(work, 'sample.h5');
  let py: H5Doc;
  let wasm: H5Doc;

  before(async () => {
    await python(WRITE_SAMPLE, [file]);
    [py, wasm] = await Promise.all([h5pyRead(file), h5wasmRead(file)]);
  });

  it('h5py reads back what h5py wrote', () => {
    assert.match(py.reader, /^h5py 3\.\d+\.\d+ \/ HDF5 1\.10\./);
    assert.deepEqual(Object.keys(py.objects).sort(), [
      '/', '/blobs', '/codes', '/frames', '/latest', '/meta', '/meta/detector',
      '/meta/detector/big', '/meta/detector/counts', '/meta/detector/scalar', '/names',
    ]);
    const fr = dataset(py, '/frames');
    assert.equal(fr.dtype, '|u1');
    assert.deepEqual(fr.shape, [10, 6, 8]);
    assert.deepEqual(fr.maxshape, [null, 6, 8]);
    assert.deepEqual(fr.chunks, [4, 6, 8]);
    assert.deepEqual(fr.filters.map((f) => f.id), [2, 1]);
    assert.equal(fr.compression, 'gzip');
    assert.equal(fr.shuffle, true);
    assert.deepEqual(valueBytes(fr), patternRows(0, 10, 48, 7));
    assert.deepEqual(fr.attrs['labels']!.value, ['x', 'y', 'z']);
    assert.equal(fr.attrs['seed']!.value, 7);

    const counts = dataset(py, '/meta/detector/counts');
    assert.equal(counts.fletcher32, true);
    assert.deepEqual(Array.from(new Uint16Array(valueBytes(counts).buffer)), Array.from({ length: 12 }, (_, i) => i * 1000));
    const big = dataset(py, '/meta/detector/big');
    assert.equal(big.dtype, '>i8');
    const bv = Buffer.from(valueBytes(big));
    assert.deepEqual([0, 1, 2].map((i) => bv.readBigInt64LE(i * 8)), [-(2n ** 62n), 0n, 2n ** 62n + 3n]);
    assert.deepEqual(dataset(py, '/meta/detector/scalar').shape, []);
    assert.equal(Buffer.from(valueBytes(dataset(py, '/meta/detector/scalar'))).readFloatLE(0), 3.25);

    assert.deepEqual(valueStrings(dataset(py, '/names')), ['frame_000.raw', 'frame_001.raw', 'ünïcode']);
    assert.deepEqual(dataset(py, '/names').string, { encoding: 'utf-8', vlen: true });
    assert.deepEqual(valueStrings(dataset(py, '/codes')), ['AB', 'C', '']);
    assert.equal(dataset(py, '/codes').dtype, '|S4');
    assert.deepEqual(valueVlenBytes(dataset(py, '/blobs')).map((b) => Array.from(b)), [[1, 2, 3], [], [255, 0]]);
    assert.deepEqual(py.objects['/latest'], { kind: 'softlink', target: '/frames' });

    const root = py.objects['/']!;
    assert.equal(root.kind, 'group');
    if (root.kind !== 'group') return;
    assert.equal(root.attrs['title']!.value, 'harness sample');
    assert.equal(root.attrs['version']!.value, (2n ** 60n + 1n).toString());
    assert.deepEqual(root.attrs['gain']!.value, [1.5, 'NaN', -0.25]);
    assert.equal(root.attrs['fixed']!.value, 'abc');
  });

  it('h5wasm (HDF5 2.0) and h5py (HDF5 1.10) describe the file identically', () => {
    assert.match(wasm.reader, /h5wasm/);
    assertSameStructure(py, wasm);
    assertSameStructure(wasm, py);
  });

  it('row-limited and single-dataset reads agree and cover just those rows', async () => {
    const [a, b] = await Promise.all([h5pyRead(file, { dataset: 'frames', rows: [3, 7] }), h5wasmRead(file, { dataset: 'frames', rows: [3, 7] })]);
    assertSameStructure(a, b);
    assert.deepEqual(Object.keys(a.objects), ['/frames']);
    assert.deepEqual(dataset(a, 'frames').rows, [3, 7]);
    assert.deepEqual(valueBytes(dataset(a, 'frames')), patternRows(3, 4, 48, 7));
    const swmr = await h5pyRead(file, { swmr: true, values: false });
    assert.equal(dataset(swmr, 'frames').value, undefined);
    assertSameStructure(swmr, py, { values: false });
  });

  it('the comparison catches a differing value and names the object', async () => {
    const other = join(work, 'other.h5');
    await python(WRITE_SAMPLE.replace('pattern_rows(0, 10, 6 * 8, 7)', 'pattern_rows(0, 10, 6 * 8, 8)'), [other]);
    const changed = await h5wasmRead(other);
    assert.throws(() => assertSameStructure(py, changed), /\/frames .*values differ at byte 0/s);
    assertSameStructure(py, changed, { ignore: ['/frames', '/latest'] });
  });

  it('h5dump (HDF5 1.10.8) dumps the file and rejects a damaged copy', async () => {
    const { header, dump } = await h5dumpCheck(file);
    assert.match(header, /DATASET "frames"/);
    assert.match(header, /H5T_STD_U8LE/);
    assert.match(header, /DATASPACE\s+SIMPLE \{ \( 10, 6, 8 \) \/ \( H5S_UNLIMITED, 6, 8 \) \}/);
    assert.match(dump!, /"frame_001.raw"/);
    assert.match(dump!, /\(1,0\): 4000, 5000, 6000, 7000,/);
    const damaged = join(work, 'damaged.h5');
    writeFileSync(damaged, readFileSync(file).subarray(0, Math.floor(statSync(file).size / 2)));
    await assert.rejects(h5dumpCheck(damaged), /h5dump .* failed/);
    await assert.rejects(h5pyRead(damaged), /h5py could not read/);
    await assert.rejects(h5wasmRead(damaged));
    truncateSync(damaged, 0);
    await assert.rejects(h5pyRead(damaged), /h5py could not read/);
  });
});

// An h5py SWMR writer that appends pattern rows a few at a time, flushing each step.
const SWMR_WRITER = `
import sys, time, h5py
from pattern import pattern_rows
path, n, row, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with h5py.File(path, 'w', libver='latest') as f:
    d = f.create_dataset('frames', shape=(0, row), maxshape=(None, row), chunks=(8, row), dtype='u1')
    f.swmr_mode = True
    print('ready', flush=True)
    sys.stdin.readline()
    for i in range(0, n, 5):
        k = min(5, n - i)
        d.resize(i + k, axis=0)
        d[i:i + k] = pattern_rows(i, k, row, seed)
        d.flush()
        time.sleep(0.01)
`;

describe('live reader', () => {
  const file = join(work, 'live.h5');
  const ROWS = 400;
  const ROW = 64;

  it('follows a growing SWMR file and verifies every row', async () => {
    const writer = spawn(PYTHON, ['-c', SWMR_WRITER, file, String(ROWS), String(ROW), '11'], {
      env: h5env({ PYTHONPATH: SUPPORT_DIR }),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const writerDone = new Promise<number | null>((res) => writer.on('close', res));
    await new Promise<void>((res, rej) => {
      writer.stdout!.once('data', () => res());
      writer.once('close', (c) => rej(new Error(`writer exited ${c} before it was ready`)));
    });
    const reader = startLiveReader({ file, dataset: 'frames', seed: 11, swmr: true, intervalSeconds: 0.005 });
    try {
      writer.stdin!.end('go\n');
      assert.equal(await writerDone, 0);
      await reader.waitForRows(ROWS, 30_000);
      const s = await reader.stop();
      assert.equal(s.failures, 0, s.samples.join('\n'));
      assert.equal(s.opened, true);
      assert.equal(s.maxRowsSeen, ROWS);
      assert.equal(s.finalRows, ROWS);
      assert.ok(s.iterations >= 2, `iterations ${s.iterations}`);
      assert.equal(s.timedOut, false);
    } finally {
      reader.kill();
      writer.kill();
    }
  });

  it('reports rows that do not match the expected pattern', async () => {
    const reader = startLiveReader({ file, dataset: 'frames', seed: 12, swmr: false, stopFile: join(work, 'stop-now') });
    const s = await reader.stop();
    assert.ok(s.failures >= 1, JSON.stringify(s));
    assert.match(s.samples[0]!, /rows differ in \[0,/);
    assert.equal(s.finalRows, ROWS);
  });

  it('agrees with both oracles on the finished file', async () => {
    const [a, b] = await Promise.all([h5pyRead(file, { swmr: true }), h5wasmRead(file)]);
    assertSameStructure(a, b);
    assert.deepEqual(valueBytes(dataset(a, 'frames')), patternRows(0, ROWS, ROW, 11));
  });
});

describe('OpenSSH server', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await sshd?.dispose();
  });

  it('accepts an sftp upload that reads back byte for byte', async () => {
    assert.ok(sshd.port > 0);
    assert.equal(sshd.user, 'root');
    assert.match(sshd.hostKeyLine, /^ssh-ed25519 AAAA\S+$/);
    assert.equal(sshd.hostKeyBlob.subarray(4, 15).toString(), 'ssh-ed25519');
    assert.match(readFileSync(sshd.knownHostsFile, 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));
    const local = join(work, 'upload.bin');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(local, data);
    const back = join(work, 'download.bin');
    const out = await sftpBatch(sshd, ['mkdir incoming', `put ${local} incoming/upload.bin`, `get incoming/upload.bin ${back}`, 'ls -l incoming']);
    assert.match(out, /upload\.bin/);
    // sessions start in `root`, so the relative path landed there
    assert.deepEqual(readFileSync(join(sshd.root, 'incoming', 'upload.bin')), data);
    assert.deepEqual(readFileSync(back), data);
    const r = await sshExec(sshd, `sha256sum ${join(sshd.root, 'incoming', 'upload.bin')}`);
    assert.equal(r.code, 0, r.stderr);
    const { createHash } = await import('node:crypto');
    assert.equal(r.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));
    assert.match(sshd.log(), /Accepted publickey for root/);
  });

  it('reports a failing sftp command', async () => {
    await assert.rejects(sftpBatch(sshd, ['get no/such/file /dev/null']), /sftp .* exit code 1/);
  });

  it('restarts on the same port, dropping open sessions', async () => {
    const port = sshd.port;
    const pid = sshd.pid;
    const t0 = Date.now();
    const sessions = () => sshd.log().split('Starting session: command').length;
    const before = sessions();
    const long = sshExec(sshd, 'sleep 60', { timeoutMs: 90_000 });
    await waitFor(async () => sessions() > before, 10_000);
    await sshd.restart();
    assert.equal(sshd.port, port);
    assert.notEqual(sshd.pid, pid);
    const r = await long;
    assert.notEqual(r.code, 0);
    assert.ok(Date.now() - t0 < 30_000, 'session outlived the restart');
    const again = await sshExec(sshd, ['echo', 'back']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.toString().trim(), 'back');
    assert.match(await sftpBatch(sshd, ['ls incoming']), /upload\.bin/);
  });

  it('a rotated host key is refused by clients that knew the old one', async () => {
    const old = sshd.hostKeyLine;
    await sshd.rotateHostKey();
    assert.notEqual(sshd.hostKeyLine, old);
    const r = await sshExec(sshd, 'true');
    assert.equal(r.code, 255);
    assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('stops: the port no longer answers', async () => {
    const port = sshd.port;
    assert.equal(await bannerArrives('127.0.0.1', port, 2000), true);
    await sshd.stop();
    assert.equal(sshd.pid, undefined);
    assert.equal(await bannerArrives('127.0.0.1', port, 2000), false);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
