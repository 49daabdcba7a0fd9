/**
 * fur as a package a program installs: `npm pack` the project, install the tarball into an empty
 * project (its dependencies from the npm registry), type-check a TypeScript program against the
 * installed `.d.ts` with `strict` (library declarations checked too), run it, and read back with
 * h5wasm the frames it pushed from memory to file:// and to the in-process SFTP server.
 * Needs the npm registry (the tarball's dependencies), so it lives in the interop tier.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDest, PASSWORD_ENV, readStored, REPO, scratch } from '../pipeline/helpers.js';
import { runOk } from '../../harness/run.js';

const NPM_TIMEOUT = 900_000;
const SHAPE = [8, 12];

/** the program a user writes: frames from memory, named, with values; resumable by name */
const PROGRAM = `
import { openCapture, isFurError, type Summary, type CaptureOptions } from 'fur';

const [destination, passwordEnv, knownHosts] = process.argv.slice(2) as [string, string | undefined, string | undefined];
const options: CaptureOptions = { method: 'append', dtype: 'uint16', shape: [${SHAPE.join(', ')}], batch: 8, passwordEnv, knownHosts };
const capture = await openCapture(destination, options);
for (let i = 0; i < 20; i++) {
  const frame = new Uint16Array(${SHAPE[0]! * SHAPE[1]!}).map((_, p) => i * 1000 + p);
  await capture.append(frame, { name: \`frame_\${i}\`, attrs: { i } });
}
try {
  await capture.append(new Uint16Array(3), { name: 'short' });
} catch (e) {
  if (!isFurError(e, 'bad-frame')) throw e;
}
const summary: Summary = await capture.close();
process.stdout.write(JSON.stringify({ frames: summary.frames, committed: capture.committed.size }));
`;

test('npm pack, install into an empty project, type-check strict against the .d.ts, push frames to file:// and SFTP', { timeout: NPM_TIMEOUT }, async (t) => {
  const work = await scratch(t, 'fur-package-');
  const packed = JSON.parse((await runOk('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: REPO, timeoutMs: NPM_TIMEOUT })).stdout.toString()) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed[0]!.files.map((f) => f.path);
  // what ships is what users run: the command, the compiled library with its declarations, the docs
  assert.deepEqual(files.filter((f) => !/^(bin\/|dist\/src\/|docs\/|README\.md$|package\.json$)/.test(f)), []);
  assert.ok(files.includes('dist/src/index.d.ts') && files.includes('bin/fur.js'));

  const app = join(work, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await runOk('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(work, packed[0]!.filename), '@types/node@20'], { cwd: app, timeoutMs: NPM_TIMEOUT });
  await writeFile(join(app, 'main.ts'), PROGRAM);
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out' },
    files: ['main.ts'],
  }));
  await runOk(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, timeoutMs: NPM_TIMEOUT });

  for (const kind of ['file', 'sftp'] as const) {
    const dest = await openDest(kind, t);
    const flags = kind === 'sftp' ? [PASSWORD_ENV, dest.flags[3]!] : [];
    const out = await runOk(process.execPath, [join(app, 'out', 'main.js'), dest.url('append', 'run'), ...flags], { cwd: app, timeoutMs: 300_000 });
    assert.deepEqual(JSON.parse(out.stdout.toString()), { frames: 20, committed: 20 });
    const stored = await readStored(dest, 'append', 'run');
    assert.deepEqual(stored.names, Array.from({ length: 20 }, (_, i) => `frame_${i}`));
    stored.frames.forEach((f, i) => assert.deepEqual(Array.from(new Uint16Array(f.slice().buffer)), Array.from({ length: SHAPE[0]! * SHAPE[1]! }, (_, p) => i * 1000 + p), `${kind} frame ${i}`));
  }
});
