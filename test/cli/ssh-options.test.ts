/**
 * The SSH options of the command line: an encrypted key unlocked with --passphrase-env (the
 * builtin transport), and messages that name the options a person can type; --ssh and
 * --ssh-config refused where they contradict the other options (exit 2).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { generateEd25519 } from '../../src/demo/sftp-server.js';
import { assertCapture, cli, openDest, readFlags, readStored, scratch, writeFrames, type Capture } from '../pipeline/helpers.js';

const C: Capture = { format: 'tiff', dtype: 'uint8', shape: [9, 7, 3], seed: 81, frames: 6 };

describe('--passphrase-env', () => {
  test('unlocks an encrypted --identity key (builtin); without it, the refusal names --passphrase-env', async (t) => {
    const { private: locked, public: pub } = generateEd25519('open sesame');
    const keys = await scratch(t, 'fur-keys-');
    const key = join(keys, 'id_locked');
    await writeFile(key, locked, { mode: 0o600 });
    const dest = await openDest('sftp', t, { authorizedKeys: [pub] });
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, C, 0, C.frames);
    const knownHosts = dest.flags[dest.flags.indexOf('--known-hosts') + 1]!;
    const base = ['upload', cam, dest.url('append', 'run'), ...readFlags(C), '--known-hosts', knownHosts, '--identity', key];

    const without = await cli([...base, '--ssh', 'builtin']);
    assert.equal(without.code, 2, without.stderr); // the command line lacks the passphrase: bad usage
    assert.match(without.lastLine, new RegExp(`identity file ${key} cannot be used: .*name a variable holding its passphrase with --passphrase-env, or load it into ssh-agent`));
    assert.doesNotMatch(without.stderr, /passphraseEnv/);

    process.env.FUR_TEST_PASSPHRASE = 'open sesame';
    try {
      // a passphrase variable makes the default (auto) the builtin transport
      const r = await cli([...base, '--passphrase-env', 'FUR_TEST_PASSPHRASE']);
      assert.equal(r.code, 0, r.stderr);
      assertCapture(await readStored(dest, 'append', 'run'), C);

      const forced = await cli([...base, '--passphrase-env', 'FUR_TEST_PASSPHRASE', '--ssh', 'openssh']);
      assert.equal(forced.code, 2, forced.stderr);
      assert.match(forced.lastLine, /--passphrase-env works with --ssh builtin only/);
    } finally {
      delete process.env.FUR_TEST_PASSPHRASE;
    }
  });

  test('--ssh builtin with --ssh-config is a usage error naming both', async (t) => {
    const dest = await openDest('sftp', t);
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, C, 0, 1);
    const r = await cli(['upload', cam, dest.url('append', 'run'), ...readFlags(C), ...dest.flags, '--ssh', 'builtin', '--ssh-config', join(cam, 'config')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.lastLine, /--ssh-config is read by OpenSSH's ssh, which --ssh builtin does not use/);
  });
});
