/**
 * The programs in examples/ run as a user runs them (`node examples/NAME.mjs`, importing 'fur'
 * through the package's own exports), each in a fresh folder; what they stored is read back with
 * h5wasm and compared with the frames they pushed. Every file in examples/ must have a case here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startSftpServer } from '../src/demo/sftp-server.js';
import { readH5, scratch } from './pipeline/helpers.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const EXAMPLES = join(REPO, 'examples');

/** frame i of the examples: pixel p holds (1000 i + p) mod 65536 */
function frame(i: number, shape: [number, number]): Buffer {
  const f = new Uint16Array(shape[0] * shape[1]);
  for (let p = 0; p < f.length; p++) f[p] = (1000 * i + p) % 65536;
  return Buffer.from(f.buffer);
}

/** Runs an example (asynchronously: an in-process server must keep answering); its JSON line. */
async function run(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>> {
  const r = await promisify(execFile)(process.execPath, [join(EXAMPLES, name), ...args], { env: { ...process.env, ...env }, timeout: 300_000 })
    .catch((e: { code?: number; stdout?: string; stderr?: string }) => assert.fail(`${name} exited ${e.code}: ${e.stderr}${e.stdout}`));
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** the frames and names fur stored in `file`, compared with what the example pushed */
async function assertStored(file: string, count: number, shape: [number, number], name: (i: number) => string): Promise<void> {
  const stored = await readH5(file);
  assert.deepEqual(stored.names, Array.from({ length: count }, (_, i) => name(i)));
  stored.frames.forEach((f, i) => assert.ok(Buffer.from(f).equals(frame(i, shape)), `${file}: frame ${i}`));
}

const frameName = (i: number) => `frame_${String(i).padStart(6, '0')}`;

const CASES: Record<string, (t: Parameters<typeof scratch>[0]) => Promise<void>> = {
  'capture-to-file.mjs': async (t) => {
    const dir = await scratch(t, 'fur-example-');
    const out = await run('capture-to-file.mjs', [dir]);
    assert.deepEqual([out.frames, out.equal, out.shape], [25, 25, [25, 64, 80]]);
    await assertStored(join(dir, 'run.h5'), 25, [64, 80], frameName);
  },

  // the demo's SFTP server, in this process; the example is given its URL, password and host key as a user gives theirs
  'capture-to-sftp.mjs': async (t) => {
    const root = await scratch(t, 'fur-example-');
    const password = 'example-password';
    const server = await startSftpServer({ root, password, username: 'me' });
    t.after(() => server.close());
    const knownHosts = join(await scratch(t, 'fur-example-keys-'), 'known_hosts');
    await writeFile(knownHosts, `${server.hostKeyLine}\n`);
    const args = [server.url('me', '/run42.h5'), knownHosts];
    const first = await run('capture-to-sftp.mjs', args, { FUR_PASSWORD: password });
    assert.deepEqual([first.alreadyCommitted, first.frames, first.verified, first.different], [0, 25, 25, 0]);
    // run again: the destination says every frame is committed, none is pushed twice
    const again = await run('capture-to-sftp.mjs', args, { FUR_PASSWORD: password });
    assert.deepEqual([again.alreadyCommitted, again.frames, again.verified], [25, 0, 25]);
    await assertStored(join(root, 'run42.h5'), 25, [64, 80], frameName);
  },

  'stream-plain-sender.mjs': async (t) => {
    const dir = await scratch(t, 'fur-example-');
    const out = await run('stream-plain-sender.mjs', [dir]);
    assert.deepEqual([out.furExit, out.frames, out.missing, out.equal], [0, 40, [], 40]);
    await assertStored(join(dir, 'run.h5'), 40, [48, 64], frameName);
  },

  'upload-watch-verify.mjs': async (t) => {
    const dir = await scratch(t, 'fur-example-');
    const out = await run('upload-watch-verify.mjs', [dir]);
    assert.deepEqual(out.upload, { frames: 20, files: 20, kept: 0 });
    assert.deepEqual(out.verify, { equal: 20, different: 0, missing: 0 });
    assert.deepEqual(out.watch, { frames: 15, endReason: 'stop-file', leftInCamera: 0 });
    assert.deepEqual(out.verifyWatched, { equal: 15, different: 0 });
    const fileName = (i: number) => `frame_${String(i).padStart(4, '0')}.raw`;
    await assertStored(join(dir, 'run42.h5'), 20, [32, 40], fileName);
    await assertStored(join(dir, 'run43.h5'), 15, [32, 40], fileName);
  },
};

describe('examples/', () => {
  test('every example has a case here', async () => {
    assert.deepEqual((await readdir(EXAMPLES)).filter((n) => n.endsWith('.mjs')).sort(), Object.keys(CASES).sort());
  });
  for (const [name, check] of Object.entries(CASES)) test(`node examples/${name}: what it stored reads back equal`, check);
});
