/**
 * Errors as a closed union: the guard narrows to one tag's fields, every tag has a retry
 * decision and an exit code (the compiler checks that both switches cover every tag; these tests
 * check the decisions themselves), and the usage mistakes the issue names exit 2 through the
 * command, before anything is read or written.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { exitCodeOf } from '../src/cli/exit.js';
import { FurError, isFurError, remoteFields, type FurErrorTag } from '../src/errors.js';
import { isTransient, isTransientTag } from '../src/pipeline/resilient.js';
import { cli, furBin } from './pipeline/helpers.js';

describe('FurError', () => {
  test('the guard narrows: a tag compared gives that tag\'s fields, typed', () => {
    const errors: unknown[] = [
      new FurError('bad-option', '--bwlimit 0: must be more than 0', { setting: '--bwlimit', value: '0' }),
      new FurError('tiff-truncated', 'a.tif: truncated', { file: 'a.tif', page: 3, size: 100 }),
      new Error('not fur'),
    ];
    const seen: string[] = [];
    for (const e of errors) {
      if (!isFurError(e)) { seen.push('other'); continue; }
      switch (e.tag) {
        case 'bad-option': seen.push(`setting ${e.fields.setting}`); break;
        case 'tiff-truncated': seen.push(`file ${e.fields.file} page ${e.fields.page}`); break;
        default: seen.push(e.tag);
      }
    }
    assert.deepEqual(seen, ['setting --bwlimit', 'file a.tif page 3', 'other']);
    const one = errors[1];
    assert.ok(isFurError(one, 'tiff-truncated') && one.fields.size === 100);
    assert.equal(isFurError(one, 'bad-option'), false);
  });

  test('a destination\'s code reads through remoteFields, and is absent on other tags', () => {
    assert.equal(remoteFields(new FurError('not-found', 'x', { bucket: 'b', key: 'k', code: 'NoSuchBucket' })).code, 'NoSuchBucket');
    assert.equal(remoteFields(new FurError('bad-option', 'x', { setting: '--x' })).code, undefined);
  });

  test('fields may be left out only for tags whose fields are all optional; the name says the tag', () => {
    const e = new FurError('stopped-disconnected', 'stopped');
    assert.deepEqual(e.fields, {});
    assert.equal(e.name, 'FurError(stopped-disconnected)');
    assert.ok(e instanceof Error);
  });
});

describe('what is retried and how the command exits', () => {
  const transient: FurErrorTag[] = ['connection-lost', 'connect-failed', 'remote-write-failed', 'io-failed', 'destination-closed', 'file-closed', 'remote-failed'];
  const answers: FurErrorTag[] = ['auth-failed', 'permission-denied', 'host-key-changed', 'not-found', 'checksum-mismatch', 'bad-option', 'tiff-truncated', 'upload-lost', 'internal'];
  const usage: FurErrorTag[] = ['bad-option', 'bad-setting', 'bad-pattern', 'bad-shape', 'unknown-dtype', 'bad-url', 'bad-slice', 'bad-identity', 'missing-password', 'method-unsupported', 'raw-needs-layout', 'needs-sources'];

  test('the link and the server are waited out; answers are not', () => {
    for (const t of transient) assert.equal(isTransientTag(t), true, t);
    for (const t of answers) assert.equal(isTransientTag(t), false, t);
    assert.equal(isTransient(new FurError('connection-lost', 'x', {})), true);
    assert.equal(isTransient(new Error('connection-lost')), false, 'only FurErrors are judged by tag');
  });

  test('usage errors exit 2, everything else that stops a run exits 1', () => {
    for (const t of usage) assert.equal(exitCodeOf(t), 2, t);
    for (const t of [...transient, 'auth-failed', 'tiff-truncated', 'gave-up', 'read-back-differs'] as FurErrorTag[]) assert.equal(exitCodeOf(t), 1, t);
  });

  for (const [what, args] of [
    ['--pattern with a folder in it', ['--pattern', 'a/b']],
    ['--idle shorter than --quiet-period', ['--idle', '1', '--quiet-period', '5']],
  ] as const) {
    test(`watch ${what}: exit 2, one line naming the option, nothing written`, async () => {
      const root = await mkdtemp(join(tmpdir(), 'fur-usage-'));
      try {
        const cam = join(root, 'cam');
        const out = join(root, 'out');
        await Promise.all([cam, out].map((d) => import('node:fs/promises').then((fs) => fs.mkdir(d))));
        await writeFile(join(cam, 'f0.raw'), new Uint8Array(4));
        const r = await cli(['watch', cam, `file://${out}/run.h5`, '--dtype', 'uint8', '--shape', '4', ...args]);
        assert.equal(r.code, 2, r.stderr);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, new RegExp(`^fur: .*${args[0]}`));
        assert.deepEqual(await readdir(out), []);
        assert.deepEqual(await readdir(cam), ['f0.raw']);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    });
  }
});

test('with --json, the error that ended a run is one JSON line: its tag, fields and exit code', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fur-json-error-'));
  try {
    const cam = join(root, 'cam');
    await import('node:fs/promises').then((fs) => fs.mkdir(cam));
    await writeFile(join(cam, 'f0.raw'), new Uint8Array(4));
    // a file where the destination's folder should be: refused for good, not waited out
    const blocker = join(root, 'not-a-folder');
    await writeFile(blocker, 'x');
    const r = await furBin(['upload', cam, `file://${blocker}/run.h5`, '--dtype', 'uint8', '--shape', '4', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const last = JSON.parse(r.stdout.toString().trim().split('\n').at(-1)!) as { type: string; tag: string; fields: { path?: string }; exitCode: number; message: string };
    assert.equal(last.type, 'error');
    assert.equal(last.tag, 'wrong-type');
    assert.equal(last.exitCode, 1);
    assert.ok(last.fields.path?.includes('not-a-folder'), JSON.stringify(last));
    assert.ok(r.stderr.includes(last.message), 'the same line a person reads');
    assert.deepEqual(await readdir(cam), ['f0.raw']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
