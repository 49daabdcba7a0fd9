import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { openDestination } from '../../src/transport/open.js';
import { generateEd25519, startSftpServer } from '../../src/demo/sftp-server.js';
import { PASSWORD, PASSWORD_ENV, rejectsWith, scratch, sftpFixture, type ServerFixture } from './helpers.js';

describe('sftp host keys', () => {
  let fx: ServerFixture;
  let home: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    fx = await sftpFixture();
    home = await scratch('fur-home-');
  });
  after(async () => { await fx.cleanup(); await home.cleanup(); });

  it('refuses an unknown host key, names the known_hosts file, and leaves it untouched', async () => {
    const knownHosts = join(home.dir, 'kh-unknown');
    await writeFile(knownHosts, '# nothing yet\n');
    const e = await rejectsWith(openDestination(fx.server.url('alice'), { ...fx.options, knownHosts }), 'unknown-host-key');
    assert.ok(e.message.includes(knownHosts), e.message);
    assert.match(e.message, /\[127\.0\.0\.1\]:\d+/);
    assert.match(e.message, /ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
    assert.equal(await readFile(knownHosts, 'utf8'), '# nothing yet\n');
  });

  it('with acceptNewHostKey records the key (creating the file) and the next connection needs no flag', async () => {
    const knownHosts = join(home.dir, 'new', '.ssh', 'known_hosts');
    const first = await openDestination(fx.server.url('alice'), { ...fx.options, knownHosts, acceptNewHostKey: true });
    await first.close();
    assert.equal(await readFile(knownHosts, 'utf8'), `${fx.server.hostKeyLine}\n`);
    const second = await openDestination(fx.server.url('alice'), { ...fx.options, knownHosts });
    assert.deepEqual(await second.list('.'), []);
    await second.close();
  });

  it('appends on a new line when the file lacks a final newline', async () => {
    const knownHosts = join(home.dir, 'kh-nonl');
    await writeFile(knownHosts, 'otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1');
    const d = await openDestination(fx.server.url('alice'), { ...fx.options, knownHosts, acceptNewHostKey: true });
    await d.close();
    assert.deepEqual((await readFile(knownHosts, 'utf8')).split('\n'),
      ['otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1', fx.server.hostKeyLine, '']);
  });

  it('refuses a changed key even with acceptNewHostKey, naming file and line', async () => {
    const other = ssh2.utils.parseKey(generateEd25519().public);
    assert.ok(!(other instanceof Error));
    const knownHosts = join(home.dir, 'kh-changed');
    const name = `[127.0.0.1]:${fx.server.port}`;
    await writeFile(knownHosts, `# first line\n${name} ssh-ed25519 ${other.getPublicSSH().toString('base64')}\n`);
    for (const acceptNewHostKey of [false, true]) {
      const e = await rejectsWith(
        openDestination(fx.server.url('alice'), { ...fx.options, knownHosts, acceptNewHostKey }), 'host-key-changed');
      assert.equal(e.fields.line, 2);
      assert.ok(e.message.includes(`delete line 2 of ${knownHosts}`), e.message);
    }
    assert.equal((await readFile(knownHosts, 'utf8')).split('\n').length, 3, 'the file was not modified');
  });

  it('asks for the key type known_hosts holds when the server has several', async () => {
    const ecdsa = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).private;
    const srv = await startSftpServer({ root: home.dir, password: PASSWORD, hostKey: [generateEd25519().private, ecdsa] });
    try {
      assert.match(srv.hostKeyLines[1], /^\[127\.0\.0\.1\]:\d+ ecdsa-sha2-nistp256 /);
      // Only the server's second-choice key is recorded; ssh2 by default would negotiate ed25519.
      const knownHosts = join(home.dir, 'kh-ecdsa');
      await writeFile(knownHosts, `${srv.hostKeyLines[1]}\n`);
      const d = await openDestination(srv.url('alice'), { ...fx.options, knownHosts });
      await d.close();
      assert.equal(await readFile(knownHosts, 'utf8'), `${srv.hostKeyLines[1]}\n`);
    } finally {
      await srv.close();
    }
  });

  it('accepts a hashed known_hosts entry', async () => {
    const { createHmac, randomBytes } = await import('node:crypto');
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(`[127.0.0.1]:${fx.server.port}`).digest();
    const knownHosts = join(home.dir, 'kh-hashed');
    const keyPart = fx.server.hostKeyLine.split(' ').slice(1).join(' ');
    await writeFile(knownHosts, `|1|${salt.toString('base64')}|${hash.toString('base64')} ${keyPart}\n`);
    const d = await openDestination(fx.server.url('alice'), { ...fx.options, knownHosts });
    assert.equal(d.capabilities.positionalWrite, true);
    await d.close();
  });
});

describe('sftp authentication', () => {
  let fx: ServerFixture;
  let keys: { dir: string; cleanup: () => Promise<void> };
  let goodKey: string;
  let badKey: string;
  let rsaKey: string;
  before(async () => {
    keys = await scratch('fur-keys-');
    const good = generateEd25519();
    const bad = generateEd25519();
    const rsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 });
    goodKey = join(keys.dir, 'id_good');
    badKey = join(keys.dir, 'id_bad');
    rsaKey = join(keys.dir, 'id_rsa');
    await writeFile(goodKey, good.private, { mode: 0o600 });
    await writeFile(badKey, bad.private, { mode: 0o600 });
    await writeFile(rsaKey, rsa.private, { mode: 0o600 });
    fx = await sftpFixture({ authorizedKeys: [good.public, rsa.public], username: 'alice' });
  });
  after(async () => { await fx.cleanup(); await keys.cleanup(); });

  /** Log in with a key file and list the root; the key must be offered signed, without asking first. */
  async function logsInSignedAtOnce(identity: string): Promise<void> {
    const queries = fx.server.stats.keyQueries;
    const d = await openDestination(fx.server.url('alice'), { knownHosts: fx.knownHosts, agent: false, identity });
    assert.deepEqual(await d.list('/'), []);
    await d.close();
    assert.equal(fx.server.stats.keyQueries, queries, 'the key was offered without a signature first');
  }

  it('logs in with a private key file, offering it signed at once (no round trip to ask first)', async () => {
    await logsInSignedAtOnce(goodKey);
  });

  it('logs in with an RSA key, signed at once with the SHA-2 algorithm the server takes', async () => {
    await logsInSignedAtOnce(rsaKey);
  });

  it('a wrong password fails as auth-failed naming user@host and the methods tried, never the password', async () => {
    process.env.FUR_TEST_WRONG = 'not the password';
    const e = await rejectsWith(
      openDestination(fx.server.url('alice'), { knownHosts: fx.knownHosts, agent: false, identity: badKey, passwordEnv: 'FUR_TEST_WRONG' }),
      'auth-failed');
    assert.ok(e.message.includes(`alice@127.0.0.1:${fx.server.port}`), e.message);
    assert.ok(e.message.includes(`publickey (${badKey})`), e.message);
    assert.ok(e.message.includes('password ($FUR_TEST_WRONG)'), e.message);
    assert.ok(!e.message.includes('not the password'));
    assert.ok(!JSON.stringify(e.fields).includes('not the password'));
    assert.deepEqual(e.fields.tried, [`publickey (${badKey})`, 'password ($FUR_TEST_WRONG)']);
  });

  it('the right password for another user fails as auth-failed', async () => {
    await rejectsWith(openDestination(fx.server.url('mallory'), fx.options), 'auth-failed');
    const d = await openDestination(fx.server.url('alice'), fx.options);
    await d.close();
    assert.equal(process.env[PASSWORD_ENV], PASSWORD);
  });

  it('an unset password variable is reported before connecting', async () => {
    delete process.env.FUR_TEST_UNSET;
    const e = await rejectsWith(
      openDestination(fx.server.url('alice'), { knownHosts: fx.knownHosts, agent: false, passwordEnv: 'FUR_TEST_UNSET' }),
      'missing-password');
    assert.match(e.message, /FUR_TEST_UNSET/);
  });

  it('a missing identity file is reported as bad-identity naming it', async () => {
    const e = await rejectsWith(
      openDestination(fx.server.url('alice'), { knownHosts: fx.knownHosts, agent: false, identity: join(keys.dir, 'nope') }),
      'bad-identity');
    assert.ok(e.message.includes(join(keys.dir, 'nope')));
  });

  it('an encrypted key without passphrase says how to supply one; with it, it logs in', async () => {
    const { private: locked, public: pub } = generateEd25519('open sesame');
    const file = join(keys.dir, 'id_locked');
    await writeFile(file, locked, { mode: 0o600 });
    const e = await rejectsWith(
      openDestination(fx.server.url('alice'), { knownHosts: fx.knownHosts, agent: false, identity: file }), 'bad-identity');
    assert.match(e.message, /--passphrase-env/);
    assert.doesNotMatch(e.message, /passphraseEnv/);
    const srv = await startSftpServer({ root: keys.dir, authorizedKeys: [pub] });
    await writeFile(join(keys.dir, 'kh'), `${srv.hostKeyLine}\n`);
    process.env.FUR_TEST_PASSPHRASE = 'open sesame';
    try {
      const d = await openDestination(srv.url('bob'), {
        knownHosts: join(keys.dir, 'kh'), agent: false, identity: file, passphraseEnv: 'FUR_TEST_PASSPHRASE',
      });
      assert.ok((await d.list('/')).includes('id_locked'));
      await d.close();
    } finally {
      await srv.close();
    }
  });
});

describe('sftp connection failures', () => {
  it('nothing listening: connect-failed naming host and port', async () => {
    const fx = await sftpFixture();
    const port = fx.server.port;
    await fx.cleanup();
    const e = await rejectsWith(openDestination(`sftp://alice@127.0.0.1:${port}/`, fx.options), 'connect-failed');
    assert.ok(e.message.includes(`alice@127.0.0.1:${port}`), e.message);
    assert.match(e.message, /ECONNREFUSED|nothing listens/);
  });

  it('a server that never speaks SSH: connect-failed after the timeout', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    const fx = await sftpFixture();
    try {
      const t0 = Date.now();
      const e = await rejectsWith(openDestination(`sftp://alice@127.0.0.1:${port}/`, { ...fx.options, connectTimeoutMs: 300 }), 'connect-failed');
      assert.match(e.message, /timed out after 0\.3 s/);
      assert.ok(Date.now() - t0 < 5000);
    } finally {
      silent.close();
      await fx.cleanup();
    }
  });
});
