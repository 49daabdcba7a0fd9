/**
 * --bwlimit against a real server: the `fur` binary uploads 200 MB over loopback SFTP to Debian's
 * OpenSSH with --bwlimit 20M, over as many SSH connections and channels as it chooses. The rate is
 * measured outside fur, from the size of the file on the server sampled every 250 ms: the time it
 * took to grow from 10% to 90% of its final size. It must be within 10% of 20 MiB/s. The frames
 * stored are read back with h5wasm. (The timetable's switch at a boundary is tested on an injected
 * clock in test/transport/egress.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { expectedFrame } from '../../src/source/camera.js';
import { run } from '../support/run.js';
import { FUR_BIN, readH5 } from '../pipeline/helpers.js';
import { startSshd, type Sshd } from './support/sshd.js';
import { folderBytes } from './support/folder.js';

const work = mkdtempSync(join(tmpdir(), 'fur-bwlimit-'));
let sshd: Sshd;
before(async () => { sshd = await startSshd({ root: join(work, 'remote') }); });
after(async () => {
  await sshd?.dispose();
  rmSync(work, { recursive: true, force: true });
});

const SHAPE = [500, 1000];
const FILES = 200; // 1 MB each
const MIB = 1 << 20;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('--bwlimit over SFTP', { timeout: 300_000 }, () => {
  test('200 MB at --bwlimit 20M arrive at 20 MiB/s, within 10%', async () => {
    const src = join(work, 'src');
    mkdirSync(src);
    const hashes: string[] = [];
    for (let i = 0; i < FILES; i++) {
      const f = expectedFrame(11, i, 'uint16', SHAPE);
      hashes.push(sha(f));
      writeFileSync(join(src, `frame${String(i).padStart(4, '0')}.raw`), f);
    }
    const remote = join(sshd.root, 'run.h5');
    const samples: { t: number; size: number }[] = [];
    const sampler = setInterval(() => {
      // the file is made under another name until its first commit
      samples.push({ t: performance.now(), size: folderBytes(sshd.root) });
    }, 250);
    let r;
    try {
      r = await run(process.execPath, [FUR_BIN, 'upload', src, `sftp://${sshd.user}@${sshd.host}:${sshd.port}${remote}`, '--bwlimit', '20M',
        '--dtype', 'uint16', '--shape', SHAPE.join('x'), '--identity', sshd.identityFile, '--known-hosts', sshd.knownHostsFile], { timeoutMs: 240_000 });
    } finally {
      clearInterval(sampler);
    }
    assert.equal(r.code, 0, r.stderr);
    const final = folderBytes(sshd.root);
    assert.ok(final > 200e6, `${final} bytes stored`);
    const at = (share: number) => samples.find((s) => s.size >= share * final)!;
    const from = at(0.1);
    const to = at(0.9);
    const rate = (to.size - from.size) / ((to.t - from.t) / 1000);
    assert.ok(Math.abs(rate - 20 * MIB) <= 2 * MIB, `measured ${(rate / MIB).toFixed(2)} MiB/s between 10% and 90% of the file`);
    process.stderr.write(`# --bwlimit 20M: ${(rate / MIB).toFixed(2)} MiB/s measured at the server\n`);
    const stored = await readH5(remote);
    assert.equal(stored.frames.length, FILES);
    const wrong = stored.frames.map((f, i) => (sha(f) === hashes[i] ? -1 : i)).filter((i) => i >= 0);
    assert.deepEqual(wrong, [], 'frames that differ');
  });
});
