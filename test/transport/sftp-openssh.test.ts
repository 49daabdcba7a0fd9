/**
 * The OpenSSH transport in the npm tier: fur's SFTP client, its ssh processes and the pool over
 * them, against the in-process server through a stand-in `ssh` (fake-ssh.ts: ssh2 logs in and
 * joins the sftp subsystem to its stdin/stdout, as ssh does). What OpenSSH itself does (its
 * configuration, host keys, messages) is tested against Debian's OpenSSH in
 * test/interop/openssh-transport.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDestination } from '../../src/transport/open.js';
import type { SftpDestination } from '../../src/transport/sftp.js';
import { chosenSsh, sshArgs } from '../../src/transport/sftp-openssh.js';
import { parseDestinationUrl, type SshLikeUrl } from '../../src/transport/url.js';
import { destinationContract } from './contract.js';
import { fakeSshDir, mostBusy, opensshOptions, pattern, rejectsWith, sftpFixture, shuffledPieces, type ServerFixture } from './helpers.js';

destinationContract('sftp over OpenSSH\'s pipes (server with posix-rename and fsync)', async () => {
  const fx = await sftpFixture();
  const dest = await openDestination(fx.server.url('alice', '/'), await opensshOptions(fx));
  return { dest, localRoot: fx.root, cleanup: fx.cleanup };
});

destinationContract('sftp over OpenSSH\'s pipes (plain SFTP v3 server)', async () => {
  const fx = await sftpFixture({ extensions: false });
  const dest = await openDestination(fx.server.url('alice', '/'), await opensshOptions(fx));
  return { dest, localRoot: fx.root, cleanup: fx.cleanup };
});

const sftpUrl = (text: string) => parseDestinationUrl(text) as SshLikeUrl<'sftp'>;

describe('sftp over OpenSSH: ssh\'s arguments', () => {
  it('passes the URL\'s user and port only when it names them, so ~/.ssh/config decides otherwise', () => {
    const alias = sshArgs(sftpUrl('sftp://archive-alias/data/run42.h5'), {});
    assert.deepEqual(alias.slice(-4), ['-s', '--', 'archive-alias', 'sftp']);
    assert.ok(!alias.includes('-l') && !alias.includes('-p'), alias.join(' '));
    const full = sshArgs(sftpUrl('sftp://bob@beamline:2222/x'), {});
    assert.deepEqual(full.slice(-8), ['-l', 'bob', '-p', '2222', '-s', '--', 'beamline', 'sftp']);
    // a port in the URL is passed even when it is 22: it overrides the configuration's
    assert.deepEqual(sshArgs(sftpUrl('sftp://bob@beamline:22/x'), {}).slice(-6, -4), ['-p', '22']);
  });

  it('maps fur\'s options onto ssh\'s, and never lets ssh prompt', () => {
    const args = sshArgs(sftpUrl('sftp://h/x'), {
      sshConfig: '/etc/lab ssh config', identity: '/keys/id', knownHosts: '/k/known hosts', acceptNewHostKey: true, agent: false, connectTimeoutMs: 9500, keepaliveMs: 0,
    });
    const options = args.flatMap((a, i) => (args[i - 1] === '-o' ? [a] : []));
    assert.deepEqual(args.slice(0, 2), ['-F', '/etc/lab ssh config']);
    assert.equal(args[args.indexOf('-i') + 1], '/keys/id');
    assert.ok(args.includes('-T'));
    for (const o of ['BatchMode=yes', 'UserKnownHostsFile="/k/known hosts"', 'StrictHostKeyChecking=accept-new', 'IdentityAgent=none', 'ConnectTimeout=10', 'ForwardAgent=no']) {
      assert.ok(options.includes(o), `${o} in ${options.join(' ')}`);
    }
    assert.ok(!options.some((o) => o.startsWith('ServerAlive')), 'keepalive 0 is off');
    assert.ok(sshArgs(sftpUrl('sftp://h/x'), {}).includes('ServerAliveInterval=15'));
    assert.ok(!sshArgs(sftpUrl('sftp://h/x'), {}).some((a) => a.startsWith('StrictHostKeyChecking')), 'OpenSSH\'s own host key policy by default');
  });

  it('picks a transport: the builtin unless asked; auto takes OpenSSH unless a password or passphrase variable is named', () => {
    const fake = ['/bin/true'];
    assert.equal(chosenSsh({}), 'builtin');
    assert.equal(chosenSsh({ ssh: 'auto', sshCommand: fake }), 'openssh');
    assert.equal(chosenSsh({ ssh: 'auto', sshCommand: fake, passwordEnv: 'PW' }), 'builtin');
    assert.equal(chosenSsh({ ssh: 'auto', sshCommand: fake, passphraseEnv: 'PP' }), 'builtin');
    const path = process.env.PATH;
    try {
      process.env.PATH = '/nonexistent';
      assert.equal(chosenSsh({ ssh: 'auto' }), 'builtin', 'no ssh on PATH');
      assert.throws(() => chosenSsh({ ssh: 'auto', sshConfig: '/x' }), (e: Error & { tag?: string }) => e.tag === 'ssh-not-found' && /--ssh-config needs it/.test(e.message));
    } finally {
      process.env.PATH = path;
    }
    const conflict = (o: Parameters<typeof chosenSsh>[0], setting: RegExp) => assert.throws(() => chosenSsh(o), (e: Error & { tag?: string }) => e.tag === 'bad-option' && setting.test(e.message));
    conflict({ ssh: 'openssh', sshCommand: fake, passwordEnv: 'PW' }, /--password-env works with --ssh builtin only/);
    conflict({ ssh: 'openssh', sshCommand: fake, passphraseEnv: 'PP' }, /--passphrase-env works with --ssh builtin only/);
    conflict({ ssh: 'builtin', sshConfig: '/etc/ssh/ssh_config' }, /--ssh-config .* --ssh builtin/);
  });
});

describe('sftp over OpenSSH: the pool over ssh processes', () => {
  let fx: ServerFixture;
  before(async () => { fx = await sftpFixture(); });
  after(async () => { await fx.cleanup(); });

  /** ssh's runs so far, as the stand-in logged them (FAKE_SSH_LOG) */
  const runs = (log: string) => readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { pid: number; args: string[] });
  const option = (args: string[], name: string) => args.flatMap((a, i) => (args[i - 1] === '-o' && a.startsWith(`${name}=`) ? [a.slice(name.length + 1)] : []))[0];

  it('pipelines over each process, spreads one file over several, and the bytes arrive whole', async () => {
    const log = join(dirname(fx.knownHosts), 'ssh-args.log');
    process.env.FAKE_SSH_LOG = log;
    let dest: SftpDestination | undefined;
    try {
      const sessions = fx.server.stats.sessions;
      dest = (await openDestination(fx.server.url('alice', '/'), { ...(await opensshOptions(fx)), connections: 3, maxInFlightBytes: 256 * 1024 })) as SftpDestination;
      for (let i = 0; i < 500 && dest.pool.lanes.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(dest.pool.lanes.length, 3, 'one channel on each of three connections');
      assert.equal(new Set(dest.pool.lanes.map((l) => l.conn)).size, 3);
      assert.equal(fx.server.stats.sessions - sessions, 3, 'three SFTP sessions at the server');
      const started = runs(log);
      assert.equal(started.length, 3, 'three ssh processes');
      for (const { args } of started) {
        assert.deepEqual(args.slice(-8), ['-l', 'alice', '-p', String(fx.server.port), '-s', '--', '127.0.0.1', 'sftp']);
        assert.equal(option(args, 'ControlMaster'), 'yes', 'each connection is a master of its own');
      }
      assert.equal(new Set(started.map(({ args }) => option(args, 'ControlPath'))).size, 3);
      // without limits@openssh.com and without the server's software name, 32 KiB a request
      assert.equal(dest.capabilities.maxWriteSize, 32 * 1024);
      const data = pattern(6 * 1024 * 1024 + 3, 21);
      const f = await dest.openWrite('spread.bin', { truncate: true, bulk: true });
      fx.server.stats.maxPending = 0;
      for (const p of shuffledPieces(data, 200_000, 8)) void f.write(p.offset, p.bytes);
      const most = await mostBusy(dest, f.flush());
      await f.sync!();
      await f.close();
      assert.ok(most >= 2, `at most ${most} processes carried writes at once`);
      assert.ok(fx.server.stats.maxPending >= 16, `at most ${fx.server.stats.maxPending} requests pending at the server`);
      assert.ok((await readFile(join(fx.root, 'spread.bin'))).equals(data), 'bytes on disk differ');
    } finally {
      delete process.env.FAKE_SSH_LOG;
      await dest?.close();
    }
  });

  it('channels of one connection: the first ssh is its ControlMaster, the others go through its socket; close ends and reaps every ssh and removes the socket\'s folder', async () => {
    const log = join(dirname(fx.knownHosts), 'ssh-mux.log');
    process.env.FAKE_SSH_LOG = log;
    try {
      const dest = (await openDestination(fx.server.url('alice', '/'), { ...(await opensshOptions(fx)), channels: 3 })) as SftpDestination;
      for (let i = 0; i < 500 && dest.pool.lanes.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(dest.pool.lanes.length, 3);
      assert.equal(new Set(dest.pool.lanes.map((l) => l.conn)).size, 1, 'one connection');
      const started = runs(log);
      assert.deepEqual(started.map(({ args }) => option(args, 'ControlMaster')), ['yes', 'no', 'no']);
      const control = option(started[0]!.args, 'ControlPath')!;
      assert.deepEqual(started.map(({ args }) => option(args, 'ControlPath')), [control, control, control]);
      for (const { pid } of started) assert.doesNotThrow(() => process.kill(pid, 0), `ssh ${pid} runs`);
      const data = pattern(2 * 1024 * 1024, 4);
      const f = await dest.openWrite('mux.bin', { truncate: true, bulk: true });
      void f.write(0, data);
      await f.close();
      await dest.close();
      for (const { pid } of started) assert.throws(() => process.kill(pid, 0), /ESRCH/, `ssh ${pid} has left and was reaped`);
      assert.ok(!existsSync(dirname(control)), 'the control socket\'s private folder is gone');
      assert.ok((await readFile(join(fx.root, 'mux.bin'))).equals(data));
    } finally {
      delete process.env.FAKE_SSH_LOG;
    }
  });

  it('a cut connection fails writes in flight with what ssh said, and every later call with the same error', async () => {
    const dest = await openDestination(fx.server.url('alice', '/'), await opensshOptions(fx));
    try {
      const f = await dest.openWrite('cut.bin', { truncate: true });
      await f.write(0, pattern(100_000, 1));
      const inFlight = f.write(100_000, pattern(3_000_000, 2));
      fx.server.dropConnections();
      const e = await rejectsWith(inFlight, 'connection-lost');
      // the stand-in's own last words, as ssh's would be
      assert.match(e.message, /connection to alice@127\.0\.0\.1:\d+ was lost \(fake-ssh: .*\)/);
      await assert.rejects(f.flush(), (x) => x === e);
      await assert.rejects(dest.list('.'), (x) => x === e);
    } finally {
      await dest.close();
    }
  });

  it('an ssh that ends before the session starts is refused at connect, with its last words', async () => {
    const wrong = await fakeSshDir(await mkdtemp(join(tmpdir(), 'fur-fake-ssh-')), 'not the password');
    try {
      const e = await rejectsWith(openDestination(fx.server.url('mallory', '/'), { ...(await opensshOptions(fx)), sshCommand: [join(wrong, 'ssh')] }), 'connect-failed');
      assert.match(e.message, /^ssh to mallory@127\.0\.0\.1:\d+ ended before the SFTP session started \(fake-ssh: All configured authentication methods failed\)/);
    } finally {
      await rm(wrong, { recursive: true, force: true });
    }
  });
});
