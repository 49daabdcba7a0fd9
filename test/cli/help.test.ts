/**
 * What a person sees first: `--help` of fur and of every command, with examples, from the real
 * binary; usage errors exit 2 with a pointer to --help.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FUR_VERSION } from '../../src/version.js';
import { furBin, REPO } from '../pipeline/helpers.js';

for (const command of ['', 'upload', 'watch', 'verify', 'demo']) {
  test(`fur ${command || ''} --help: usage, options and examples`, async () => {
    const r = await furBin([...(command ? [command] : []), '--help']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.match(out, new RegExp(`^Usage: fur ${command}`));
    assert.match(out, /\nExamples:\n/, 'has examples');
    const examples = out.slice(out.indexOf('\nExamples:\n')).split('\n').filter((l) => /^ {2}fur /.test(l));
    assert.ok(examples.length >= 2, `at least two examples:\n${out}`);
    if (command) assert.ok(examples.every((l) => l.startsWith(`  fur ${command}`) || command === ''), out);
    else for (const c of ['upload', 'watch', 'verify', 'demo']) assert.ok(out.includes(`  ${c} `), `lists ${c}`);
  });
}

test('fur upload and watch --help name every method, the exit codes and where the password comes from', async () => {
  for (const command of ['upload', 'watch']) {
    const out = (await furBin([command, '--help'])).stdout.toString();
    for (const s of ['append', 'batches', 'files', '--delete-source', '--password-env', '--accept-new-host-key', '--json', '--compression', '--chunk-frames']) {
      assert.ok(out.includes(s), `${command} --help mentions ${s}`);
    }
  }
  const top = (await furBin(['--help'])).stdout.toString();
  assert.match(top, /Exit codes?/i, 'fur --help explains exit codes');
});

test('usage errors exit 2 and point at --help', async () => {
  for (const args of [['upload'], ['upload', 'a'], ['frobnicate'], ['upload', 'a', 'b', '--no-such-flag']]) {
    const r = await furBin(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--help/);
  }
});

test('fur --version prints the package version, which fur also writes into its files', async () => {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.equal(FUR_VERSION, pkg.version);
  for (const flag of ['--version', '-V']) {
    const r = await furBin([flag]);
    assert.equal(r.code, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().trim(), pkg.version);
  }
});
