/**
 * Security and bad input, one case each, against the in-process SFTP server: every refusal ends
 * with a message that says what happened and what to do, carries its tag, and leaves the local
 * sources and the remote file as they were (byte for byte) — nothing deleted, nothing overwritten.
 *
 *  - a changed host key stops the run, before a transfer and in the middle of one;
 *  - the password never appears in what fur prints (status lines, --json, errors);
 *  - a source name with control characters is refused and kept (unsafe-name);
 *  - appending to a file fur did not write is refused (not-a-fur-file), the file unchanged;
 *  - appending frames of another shape or dtype is refused (layout-mismatch), the file unchanged.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import h5wasm from 'h5wasm/node';
import { connect } from '../../src/cli/connect.js';
import { isFurError } from '../../src/errors.js';
import { DEFAULTS, type Method as PipelineMethod } from '../../src/pipeline/options.js';
import { Progress } from '../../src/pipeline/progress.js';
import { run } from '../../src/pipeline/run.js';
import { cameraFileName, encodeFile, expectedFrame } from '../../src/source/camera.js';
import type { NumericDtype } from '../../src/source/frame.js';
import { openDestination } from '../../src/transport/open.js';
import { generateEd25519, startSftpServer, type SftpServer } from '../../src/demo/sftp-server.js';
import { FaultProxy } from '../interop/support/faults/proxy.js';
import { h5wasmReady } from '../support/h5wasm.js';
import {
  assertCapture, cli, furBin, jsonLines, localFrames, METHODS, openDest, PASSWORD, PASSWORD_ENV, readFlags, readH5, readStored, scratch, until,
  writeFrames, type Capture, type Dest,
} from './helpers.js';

type T = Parameters<typeof scratch>[0];

const RAW: Capture = { format: 'raw', dtype: 'uint16', shape: [16, 16], seed: 71, frames: 6 };

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every byte of every file under `dir`, by relative path: to show nothing there changed. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else out.set(`${rel}${e.name}`, sha(await readFile(join(d, e.name))));
    }
  };
  await walk(dir, '');
  return out;
}

/** The FurError an in-process run over `url` ends with (the CLI prints only its message). */
async function runError(url: string, method: PipelineMethod, cam: string, c: Capture, pattern: string, flags: { passwordEnv?: string; knownHosts?: string }): Promise<unknown> {
  const { dest, path } = await connect(url, method, flags);
  try {
    await run({
      sourceDir: cam, pattern, dest, destPath: path,
      options: { ...DEFAULTS, method, deleteSource: true, read: c.format === 'raw' ? { dtype: c.dtype as NumericDtype, shape: c.shape } : {} },
      progress: new Progress(() => {}),
    });
  } catch (e) {
    return e;
  } finally {
    await dest.close();
  }
  return undefined;
}

/** A camera folder holding frames [from, to) of `c`, and the list of its frame files. */
async function camera(t: T, c: Capture, from = 0, to = c.frames): Promise<{ cam: string; files: string[] }> {
  const cam = await scratch(t, 'fur-camera-');
  await writeFrames(cam, c, from, to);
  return { cam, files: await localFrames(cam) };
}

async function assertKept(cam: string, files: string[], bytes?: Map<string, string>): Promise<void> {
  assert.deepEqual(await localFrames(cam), files, 'every source kept');
  if (bytes) assert.deepEqual(await snapshot(cam), bytes, 'sources unchanged');
}

function knownHostsLine(port: number, server: SftpServer): string {
  // the server's key, listed under the address clients use (the relay in front of it)
  return `[127.0.0.1]:${port} ${server.hostKeyLine.split(' ').slice(1).join(' ')}\n`;
}

describe('a changed host key stops the run', () => {
  /** An SFTP server behind a relay, so a replacement server answers on the same address. */
  async function site(t: T): Promise<{ root: string; proxy: FaultProxy; knownHosts: string; url: string; flags: string[]; server: () => SftpServer; replace: () => Promise<SftpServer> }> {
    const base = await scratch(t, 'fur-hostkey-');
    const root = join(base, 'remote');
    await mkdir(root);
    let server = await startSftpServer({ root, password: PASSWORD, username: 'lab' });
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: server.port });
    const knownHosts = join(base, 'known_hosts');
    await writeFile(knownHosts, knownHostsLine(proxy.port, server));
    t.after(async () => { await proxy.close(); await server.close(); });
    return {
      root, proxy, knownHosts,
      url: `sftp://lab@127.0.0.1:${proxy.port}/run.h5`,
      flags: ['--password-env', PASSWORD_ENV, '--known-hosts', knownHosts, ...readFlags(RAW)],
      server: () => server,
      // the same host and port, the same files, another key: a reinstalled server, or someone in between
      replace: async () => {
        const next = await startSftpServer({ root, password: PASSWORD, username: 'lab', hostKey: generateEd25519().private });
        proxy.retarget({ host: '127.0.0.1', port: next.port });
        const old = server;
        server = next;
        await old.close();
        return next;
      },
    };
  }

  test('before anything is sent: exit 1 naming the key and known_hosts, also with --accept-new-host-key; nothing deleted or overwritten', async (t) => {
    const s = await site(t);
    const { cam } = await camera(t, RAW, 0, 4);
    const first = await cli(['upload', cam, s.url, '--delete-source', ...s.flags]);
    assert.equal(first.code, 0, first.stderr);
    const stored = await snapshot(s.root);
    const trusted = await readFile(s.knownHosts, 'utf8');

    await s.replace();
    await writeFrames(cam, RAW, 4, 6);
    const files = await localFrames(cam);
    for (const extra of [[], ['--accept-new-host-key']]) {
      const r = await cli(['upload', cam, s.url, '--delete-source', ...extra, ...s.flags]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.lastLine, /^fur: host key of \[127\.0\.0\.1\]:\d+ changed \(now ssh-ed25519 SHA256:[A-Za-z0-9+/]+\), which may mean someone is intercepting the connection/);
      assert.ok(r.lastLine.includes(s.knownHosts), `names the known_hosts file: ${r.lastLine}`);
      assert.match(r.lastLine, /delete line 1 of/);
      await assertKept(cam, files);
      assert.deepEqual(await snapshot(s.root), stored, 'the remote file is unchanged');
      assert.equal(await readFile(s.knownHosts, 'utf8'), trusted, 'known_hosts is not rewritten');
    }
    const e = await openDestination(s.url, { passwordEnv: PASSWORD_ENV, knownHosts: s.knownHosts, acceptNewHostKey: true }).then(
      async (d) => { await d.close(); return undefined; }, (err: unknown) => err);
    assert.ok(isFurError(e, 'host-key-changed'), `tag: ${String(e)}`);
    assertCapture(await readH5(join(s.root, 'run.h5')), RAW, 0, 4);
  });

  test('while a watch is running: it stops at the reconnect (no retrying into the other server), committed frames stay, the rest are kept locally', async (t) => {
    const s = await site(t);
    const { cam } = await camera(t, RAW, 0, 0);
    const c: Capture = { ...RAW, frames: 12 };
    const watching = cli(['watch', cam, s.url, '--delete-source', '--completion', 'rename', '--stop-file', 'capture.done', '--batch', '2',
      '--give-up-after', '600', ...s.flags]);
    await writeFrames(cam, c, 0, 6);
    // some frames committed and their sources deleted: the run is under way
    await until(async () => (await localFrames(cam)).length < 6, 30_000, 'a first commit');
    await s.replace();
    s.proxy.cutNow();
    await writeFrames(cam, c, 6, 12);
    await writeFile(join(cam, 'capture.done'), '');
    const r = await watching;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.lastLine, /^fur: host key of \[127\.0\.0\.1\]:\d+ changed/);
    // whatever was not committed is still here; together they are the whole capture, once
    const stored = await readH5(join(s.root, 'run.h5'));
    assert.ok(stored.frames.length >= 1 && stored.frames.length < 12, `${stored.frames.length} frames committed before the cut`);
    assertCapture(stored, c, 0, stored.frames.length);
    assert.deepEqual(await localFrames(cam), Array.from({ length: 12 - stored.frames.length }, (_, k) => cameraFileName(stored.frames.length + k + 1, 'raw')));
  });
});

describe('credentials never appear in what fur prints', () => {
  /** every way a run talks: a status line, --json events, the errors of a refused login, an unreachable server, verify */
  test('password from --password-env: status lines, --json, refused login, unreachable server, verify — none prints it', async (t) => {
    const dest = await openDest('sftp', t);
    const { cam } = await camera(t, RAW, 0, 4);
    const url = dest.url('append', 'run');
    const outputs: Array<[string, string]> = [];
    const runBin = async (what: string, args: string[], env?: NodeJS.ProcessEnv, code?: number) => {
      const r = await furBin(args, { env });
      if (code !== undefined) assert.equal(r.code, code, `${what}: exit ${r.code}\n${r.stderr}`);
      outputs.push([`${what} (stdout)`, r.stdout.toString('utf8')], [`${what} (stderr)`, r.stderr]);
      return r;
    };
    await runBin('upload', ['upload', cam, url, ...readFlags(RAW), ...dest.flags], undefined, 0);
    await writeFrames(cam, RAW, 4, 6);
    const json = await runBin('upload --json', ['upload', cam, url, '--json', ...readFlags(RAW), ...dest.flags], undefined, 0);
    assert.ok(jsonLines(json.stdout).some((e) => e.type === 'done'), 'the --json run reports');
    await runBin('verify', ['verify', cam, url, ...readFlags(RAW), ...dest.flags], undefined, 0);
    await runBin('verify --json', ['verify', cam, url, '--json', ...readFlags(RAW), ...dest.flags], undefined, 0);
    // a wrong password is not printed either (it is somebody's password too)
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const refused = await runBin('refused login', ['upload', cam, url, '--json', ...readFlags(RAW), ...dest.flags.map((f) => (f === PASSWORD_ENV ? 'FUR_SECURITY_WRONG' : f))],
      { FUR_SECURITY_WRONG: wrong }, 1);
    assert.match(refused.stderr, /authentication as lab@127\.0\.0\.1:\d+ failed; tried password \(\$FUR_SECURITY_WRONG\)/);
    // a server that went away: the reconnect messages and the final error
    await dest.server!.close();
    const gone = await runBin('unreachable', ['upload', cam, url, '--give-up-after', '1', ...readFlags(RAW), ...dest.flags], undefined, 1);
    assert.match(gone.stderr, /gave up after \d+ s without a working destination/);
    // a password typed into the URL is refused, and masked in the refusal
    const inUrl = url.replace('sftp://lab@', `sftp://lab:${PASSWORD}@`);
    const typed = await runBin('password in the URL', ['upload', cam, inUrl, ...readFlags(RAW), ...dest.flags]);
    assert.notEqual(typed.code, 0);
    for (const [what, text] of outputs) {
      assert.ok(!text.includes(PASSWORD), `${what} shows the password:\n${text}`);
      assert.ok(!text.includes(wrong), `${what} shows the wrong password:\n${text}`);
    }
    // nor is it stored anywhere at the destination
    for (const name of await readdir(dest.root)) {
      assert.ok(!(await readFile(join(dest.root, name))).includes(Buffer.from(PASSWORD)), `${name} holds the password`);
    }
    assertCapture(await readStored(dest, 'append', 'run'), RAW);
  });
});

describe('a source name with control characters is refused and kept (unsafe-name)', () => {
  for (const method of METHODS) {
    test(`${method}: exit 3, the file named in a message without raw control characters, kept byte for byte; the others stored and deleted`, async (t) => {
      const dest = await openDest('sftp', t);
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [8, 6], seed: 72, frames: 4 };
      const { cam } = await camera(t, c);
      // an escape sequence (a terminal injection if printed raw) and a newline (a forged log line)
      const names = ['frame000005\u001b[2J.tif', 'frame000006\nfur: 6 frames.tif'];
      for (const n of names) await writeFile(join(cam, n), encodeFile('tiff', 'uint8', c.shape, [expectedFrame(c.seed, 9, 'uint8', c.shape)]));
      const before = await snapshot(cam);
      const r = await furBin(['upload', cam, dest.url(method, 'run'), '--method', method, '--delete-source', '--json', '--pattern', 'frame*.tif', ...dest.flags]);
      assert.equal(r.code, 3, r.stderr);
      const rejected = jsonLines(r.stdout).filter((e) => e.type === 'rejected');
      assert.deepEqual(rejected.map((e) => e.tag), ['unsafe-name', 'unsafe-name']);
      for (const e of rejected) assert.match(String(e.message), /file name contains control characters; rename the file to upload it \(it is kept\)/);
      assert.deepEqual(rejected.map((e) => String(e.file).slice(cam.length + 1)).sort(), [...names].sort());
      // the same run without --json: the refusal is readable and prints no control character
      const plain = await furBin(['upload', cam, dest.url(method, 'run'), '--method', method, '--delete-source', '--pattern', 'frame*.tif', ...dest.flags]);
      assert.equal(plain.code, 3, plain.stderr);
      // the first said as it happens, the second counted; both listed again at the end
      assert.equal(plain.stderr.split('\n').filter((l) => l.startsWith('fur: kept ') && /contains control characters/.test(l)).length, 1, plain.stderr);
      assert.match(plain.stderr, /^fur: kept 1 more file for the same reason \(unsafe-name\); -v lists each$/m);
      const kept = plain.stderr.split('\n').filter((l) => l.startsWith('  ') && l.includes('contains control characters'));
      assert.equal(kept.length, 2, plain.stderr);
      for (const l of kept) {
        assert.match(l, /contains control characters/);
        // eslint-disable-next-line no-control-regex
        assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(l), `a raw control character reaches the terminal: ${JSON.stringify(l)}`);
      }
      assert.ok(!plain.stderr.split('\n').some((l) => l.startsWith('fur: 6 frames.tif')), 'no forged line');
      // kept, unchanged; the good frames stored and their sources deleted
      const left = await snapshot(cam);
      assert.deepEqual([...left.keys()].sort(), [...names].sort());
      for (const n of names) assert.equal(left.get(n), before.get(n));
      assertCapture(await readStored(dest, method, 'run'), c);
      if (method !== 'append') {
        const remote = await readdir(dest.local(method, 'run'));
        assert.ok(!remote.some((n) => [...n].some((c) => c.charCodeAt(0) < 0x20)), `no such name at the destination: ${JSON.stringify(remote)}`);
      }
    });
  }
});

describe('appending to a file fur did not write is refused (not-a-fur-file), the file unchanged', () => {
  /** HDF5 files another program wrote: h5wasm (HDF5 2.0), laid out like fur's, in its default and latest formats */
  async function h5wasmFile(path: string, libver?: 'latest'): Promise<void> {
    await h5wasmReady();
    const f = new h5wasm.File(path, 'w', libver ? { libver } : undefined);
    const n = 3;
    f.create_dataset({ name: 'data', data: new Uint16Array(n * 256).map((_, i) => i), shape: [n, 16, 16], maxshape: [null, 16, 16], chunks: [1, 16, 16] });
    f.create_dataset({ name: 'frame_name', data: ['a.raw', 'b.raw', 'c.raw'], maxshape: [null], chunks: [16] });
    f.create_dataset({ name: 'frame_page', data: new Uint32Array(n), maxshape: [null], chunks: [16] });
    f.create_dataset({ name: 'frame_mtime', data: new Float64Array(n), maxshape: [null], chunks: [16] });
    f.create_dataset({ name: 'frame_sha256', data: new Uint8Array(n * 32), shape: [n, 32], maxshape: [null, 32], chunks: [16, 32] });
    f.close();
  }

  const cases: Array<[string, (path: string, dest: Dest, t: T) => Promise<void>, RegExp]> = [
    ['random bytes', (p) => writeFile(p, randomBytes(64 << 10)), /cannot continue this file \(file: not an HDF5 file \(no signature at offset 0\)\); fur only appends to files it wrote — choose a new file name$/],
    ['an HDF5 file h5wasm wrote, laid out like fur\'s (/data, /frame_name, …)', (p) => h5wasmFile(p), /: not written by fur; fur only appends to files it wrote with --method append — choose a new file name$/],
    ['an HDF5 file h5wasm wrote in the latest format', (p) => h5wasmFile(p, 'latest'), /cannot continue this file \(.+\); fur only appends to files it wrote — choose a new file name$/],
    ['a file fur wrote with --method batches', async (p, dest, t) => {
      const { cam } = await camera(t, RAW, 0, 2);
      const r = await cli(['upload', cam, dest.url('batches', 'b'), '--method', 'batches', ...readFlags(RAW), ...dest.flags]);
      assert.equal(r.code, 0, r.stderr);
      await writeFile(p, await readFile(join(dest.local('batches', 'b'), 'frame000001.h5')));
    }, /: written by fur --method batches; fur only appends to files it wrote with --method append — choose a new file name$/],
  ];
  for (const [what, make, message] of cases) {
    test(what, async (t) => {
      const dest = await openDest('sftp', t);
      const target = dest.local('append', 'run');
      await make(target, dest, t);
      const remote = await snapshot(dest.root);
      const { cam, files } = await camera(t, RAW);
      const bytes = await snapshot(cam);
      const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...readFlags(RAW), ...dest.flags]);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.lastLine.startsWith('fur: sftp://lab@127.0.0.1:') && r.lastLine.includes('/run.h5: '), r.lastLine);
      assert.match(r.lastLine, message);
      const e = await runError(dest.url('append', 'run'), 'append', cam, RAW, 'frame*.raw', { passwordEnv: PASSWORD_ENV, knownHosts: dest.flags[3] });
      assert.ok(isFurError(e, 'not-a-fur-file'), `tag: ${String(e)}`);
      await assertKept(cam, files, bytes);
      assert.deepEqual(await snapshot(dest.root), remote, 'the remote file is unchanged byte for byte, and nothing was added');
    });
  }
});

describe('appending frames of another layout is refused (layout-mismatch), the file unchanged', () => {
  const cases: Array<[string, Capture, RegExp]> = [
    ['another dtype (uint8)', { ...RAW, dtype: 'uint8', seed: 73 }, /\/data holds frames of 16x16 uint16, the source has 16x16 uint8; append to a new file$/],
    ['another shape (8x8)', { ...RAW, shape: [8, 8], seed: 74 }, /\/data holds frames of 16x16 uint16, the source has 8x8 uint16; append to a new file$/],
  ];
  for (const [what, other, message] of cases) {
    test(what, async (t) => {
      const dest = await openDest('sftp', t);
      const first = await camera(t, RAW);
      const ok = await cli(['upload', first.cam, dest.url('append', 'run'), '--delete-source', ...readFlags(RAW), ...dest.flags]);
      assert.equal(ok.code, 0, ok.stderr);
      const remote = await snapshot(dest.root);
      const { cam, files } = await camera(t, { ...other, frames: 3 });
      // other names, so nothing counts as already stored
      const renamed = files.map((n) => n.replace('frame', 'next'));
      for (const [i, n] of files.entries()) await writeFile(join(cam, renamed[i]!), await readFile(join(cam, n)));
      for (const n of files) await rm(join(cam, n));
      const bytes = await snapshot(cam);
      const flags = ['--dtype', other.dtype, '--shape', other.shape.join('x'), '--pattern', 'next*.raw'];
      const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...flags, ...dest.flags]);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.lastLine.includes('/run.h5: '), r.lastLine);
      assert.match(r.lastLine, message);
      const e = await runError(dest.url('append', 'run'), 'append', cam, other, 'next*.raw', { passwordEnv: PASSWORD_ENV, knownHosts: dest.flags[3] });
      assert.ok(isFurError(e, 'layout-mismatch'), `tag: ${String(e)}`);
      assert.deepEqual(await snapshot(cam), bytes, 'every source kept, unchanged');
      assert.deepEqual(await snapshot(dest.root), remote, 'the remote file is unchanged byte for byte');
      assertCapture(await readStored(dest, 'append', 'run'), RAW);
      assert.ok(existsSync(dest.local('append', 'run')));
    });
  }
});
