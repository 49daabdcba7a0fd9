/**
 * Every option of every command, from the commander program itself (so an option added later is
 * covered, or this test names it): a bad value exits 2 before anything connects, with a message
 * that names the option as the user typed it. Options that take any text list why here.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Command, Option } from 'commander';
import { program } from '../../src/cli/main.js';
import { cli } from '../pipeline/helpers.js';

// made now: the cases below are built from it before any test runs
const dir = mkdtempSync(join(tmpdir(), 'fur-usage-'));
const src = join(dir, 'src');
mkdirSync(src);
writeFileSync(join(src, 'frame1.bin'), Buffer.alloc(16));
after(() => rm(dir, { recursive: true, force: true }));

/**
 * A bad value per option (by long flag, or `command --flag` where commands differ), or null with
 * the reason no value can be wrong before connecting. Choices get 'bogus' without an entry.
 */
const BAD: Record<string, string[] | null> = {
  '--config': ['/nonexistent/fur.toml'],
  '--ssh-config': ['/nonexistent/ssh_config'],
  '--identity': ['/nonexistent/id_ed25519'],
  '--passphrase-env': ['FUR_USAGE_TEST_UNSET_VARIABLE'],
  '--password-env': ['FUR_USAGE_TEST_UNSET_VARIABLE'],
  '--known-hosts': ['/'],
  '--ca-file': ['/nonexistent/ca.pem'],
  '--endpoint': ['minio.lab:9000'],
  '--region': null, // any name: the server says whether it knows it
  '--profile': null, // resolved by the AWS SDK's credential chain at the first request
  '--connections': ['0'],
  '--channels': ['65'],
  '--connect-timeout': ['0'],
  '--lease-ttl': ['0'],
  '--pattern': ['a/b'],
  '--dtype': ['complex7'],
  '--shape': ['0x-1'],
  '--format': ['gif'],
  '--batch': ['0'],
  '--batch-seconds': ['-1'],
  '--chunk-frames': ['0'],
  '--compression': ['lz77'],
  '--dataset': ['data'],
  '--attr': ['=5'],
  '--metadata': ['/nonexistent/metadata.json'],
  '--parallel': ['0'],
  '--serve': ['8080x'],
  '--series': ['0'],
  '--max-buffered': ['lots'],
  '--spool': ['/dev/null/spool'],
  '--spool-max': ['0'],
  '--give-up-after': ['-5'],
  '--bwlimit': ['fast'],
  '--stats': ['-1'],
  '--log-file': ['/nonexistent/fur.log'],
  '--count': ['0'],
  '--idle': ['-1'],
  '--stop-file': ['a/capture.done'],
  '--quiet-period': ['0'],
  '--marker': ['a/.done'],
  '--url': ['not a url'],
  '--output': ['/nonexistent/out.npy'],
  '--slice': ['1:2:3'],
  '--frames': ['0'],
  '--fps': ['0'],
};

/** switches that cannot be wrong alone; combinations are cased below */
const PAIRS: Record<string, string[]> = {
  '--verbose': ['--quiet'],
};

/** the positional arguments each command needs; a destination nothing listens on */
function positional(cmd: string): string[] {
  const dest = 'sftp://nobody@127.0.0.1:9/run.h5';
  switch (cmd) {
    case 'upload': case 'watch': case 'verify': return [src, dest];
    case 'stream': return ['tcp://127.0.0.1:9', dest];
    case 'index': case 'get': return [dest];
    default: return [];
  }
}

function commands(p: Command, prefix: string[] = []): { path: string[]; cmd: Command }[] {
  return p.commands.flatMap((c) => [{ path: [...prefix, c.name()], cmd: c }, ...commands(c, [...prefix, c.name()])]);
}

function badValues(name: string, o: Option): string[] | null | undefined {
  if (o.argChoices) return ['bogus'];
  return BAD[`${name} ${o.long}`] ?? BAD[o.long!];
}

const cases: { args: string[]; option: string }[] = [];
const missing: string[] = [];
for (const { path, cmd } of commands(program())) {
  for (const o of cmd.options) {
    if (!o.long || o.long === '--help' || o.hidden) continue;
    const name = path.join(' ');
    if (o.required || o.optional) {
      const values = badValues(name, o);
      if (values === undefined) missing.push(`fur ${name} ${o.long}`);
      for (const v of values ?? []) cases.push({ args: [...path, ...positional(path[path.length - 1]!), o.long, v], option: o.long });
    } else if (PAIRS[o.long]) {
      cases.push({ args: [...path, ...positional(path[path.length - 1]!), o.long, ...PAIRS[o.long]!], option: o.long });
    }
  }
}

describe('usage errors', () => {
  test('every option that takes a value has a bad-value case here (or says why none can be wrong)', () => {
    assert.deepEqual(missing, []);
    assert.ok(cases.length >= 40, `${cases.length} cases`);
  });

  for (const c of cases) {
    test(`fur ${c.args.join(' ').replace(src, 'SRC')}: exit 2 naming ${c.option}`, { timeout: 60_000 }, async () => {
      const r = await cli(c.args);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(c.option), `names ${c.option}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /[a-z][A-Z][a-z]+Env\b|acceptNewHostKey|Ms\b/, 'no internal option names');
    });
  }

  const more: { args: () => string[]; names: string[] }[] = [
    { args: () => ['upload', src, join(dir, 'out.h5'), '--pattern', 'a/b'], names: ['--pattern'] },
    { args: () => ['watch', src, join(dir, 'out.h5'), '--idle', '1', '--quiet-period', '5'], names: ['--idle', '--quiet-period'] },
    { args: () => ['upload', join(dir, 'no-such-folder'), join(dir, 'out.h5')], names: ['no-such-folder', 'no such folder'] },
    { args: () => ['watch', join(dir, 'no-such-folder'), join(dir, 'out.h5')], names: ['no-such-folder', 'no such folder'] },
    { args: () => ['verify', join(dir, 'no-such-folder'), join(dir, 'out.h5')], names: ['no-such-folder', 'no such folder'] },
    { args: () => ['upload', join(src, 'frame1.bin'), join(dir, 'out.h5')], names: ['frame1.bin', 'not a folder'] },
  ];
  for (const m of more) {
    test(`fur ${m.args().join(' ').replaceAll(dir, 'DIR')}: exit 2, saying what is wrong`, async () => {
      const r = await cli(m.args());
      assert.equal(r.code, 2, r.stderr);
      for (const n of m.names) assert.ok(r.stderr.includes(n), `mentions ${n}: ${r.stderr}`);
    });
  }
});
