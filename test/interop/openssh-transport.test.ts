/**
 * fur's OpenSSH transport against Debian's OpenSSH, client and server: the lab's own SSH setup
 * with no fur credential options at all.
 *
 *  - an alias in a test ssh_config (--ssh-config) that reaches the server through ProxyJump over
 *    a second sshd;
 *  - an OpenSSH user certificate (ssh-keygen -s; TrustedUserCAKeys at the server), and the same
 *    key without it refused;
 *  - an encrypted key held by an ssh-agent the test starts;
 *
 * each uploading a capture with append, batches and files, checked by `fur verify` and by h5py
 * (HDF5 1.10.8) frame by frame. Then the refusals as ssh reports them: a changed host key (both
 * transports), an unknown host, a wrong key, a broken ssh_config; and the destination contract
 * against this server for both transports.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cameraFileName, encodeFile, expectedFrame, runCamera } from '../../src/source/camera.js';
import { sortSequence } from '../../src/source/sequence.js';
import { openDestination } from '../../src/transport/open.js';
import type { SftpDestination } from '../../src/transport/sftp.js';
import { FUR_BIN } from '../pipeline/helpers.js';
import { run, runOk, type RunResult } from '../../harness/run.js';
import { destinationContract } from '../transport/contract.js';
import { h5pyFrames } from './support/h5py.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';

const work = mkdtempSync(join(tmpdir(), 'fur-openssh-transport-'));
const SHAPE = [12, 10, 3];
const FRAMES = 24;
const SEED = 311;
let target: Sshd;
let jump: Sshd;
let cam: string;
/** known_hosts listing both servers */
let knownHosts: string;
let agent: ChildProcess | undefined;
const agentSock = join(work, 'agent.sock');

const keygen = (...args: string[]) => runOk('/usr/bin/ssh-keygen', ['-q', ...args]);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fur = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
  run(process.execPath, [FUR_BIN, ...args], { timeoutMs: 120_000, env: { ...process.env, SSH_AUTH_SOCK: '', ...env } });
const text = (r: RunResult) => `${r.stdout.toString()}${r.stderr.toString()}`;

before(async () => {
  await keygen('-t', 'ed25519', '-N', '', '-C', 'fur-test-ca', '-f', join(work, 'ca'));
  [target, jump] = await Promise.all([
    startSshd({ root: join(work, 'remote'), extraConfig: [`TrustedUserCAKeys ${join(work, 'ca.pub')}`] }),
    startSshd({ root: join(work, 'jump-root') }),
  ]);
  knownHosts = join(work, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${target.port} ${target.hostKeyLine}\n[127.0.0.1]:${jump.port} ${jump.hostKeyLine}\n`);
  cam = join(work, 'camera');
  mkdirSync(cam);
  await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: SHAPE, frames: FRAMES, seed: SEED });
});

after(async () => {
  agent?.kill('SIGTERM');
  await Promise.all([target?.dispose(), jump?.dispose()]);
  rmSync(work, { recursive: true, force: true });
});

/** An ssh_config block for the target server under `alias`, with `lines` added. */
function hostBlock(alias: string, server: Sshd, lines: string[]): string {
  return [`Host ${alias}`, '  HostName 127.0.0.1', `  Port ${server.port}`, '  User root', `  UserKnownHostsFile ${knownHosts}`, ...lines.map((l) => `  ${l}`), ''].join('\n');
}

/** The capture's frames, as the camera wrote them, against what h5py reads from `paths`. */
async function assertFrames(paths: string[]): Promise<void> {
  const files = await h5pyFrames(paths);
  const hashes = files.flatMap((f) => f.hashes);
  assert.deepEqual(files.flatMap((f) => f.names), Array.from({ length: FRAMES }, (_, i) => cameraFileName(i + 1, 'tiff')), '/frame_name');
  assert.deepEqual(hashes, Array.from({ length: FRAMES }, (_, i) => sha(expectedFrame(SEED, i, 'uint8', SHAPE))), 'frames equal the camera\'s');
}

/**
 * Upload the capture with each method to `base`/<name>…, with only `args` besides the method,
 * then `fur verify` it with the same arguments; read back with h5py (append, batches) or byte for
 * byte (files).
 */
async function uploadEachMethod(base: string, name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  for (const method of ['append', 'batches', 'files'] as const) {
    const rel = `${name}-${method}${method === 'append' ? '.h5' : ''}`;
    const url = `${base}/${rel}`;
    const up = await fur(['upload', cam, url, '--method', method, '--batch', '10', ...args], env);
    assert.equal(up.code, 0, `${method}: ${text(up)}`);
    const check = await fur(['verify', cam, url, '--method', method, '--json', ...args], env);
    assert.equal(check.code, 0, `verify ${method}: ${text(check)}`);
    assert.equal(JSON.parse(check.stdout.toString().trim().split('\n').pop()!).equal, FRAMES);
    const local = join(target.root, rel);
    if (method === 'append') await assertFrames([local]);
    else if (method === 'batches') await assertFrames(sortSequence(readdirSync(local).filter((n) => n.endsWith('.h5'))).map((n) => join(local, n)));
    else {
      const names = sortSequence(readdirSync(local));
      assert.equal(names.length, FRAMES);
      names.forEach((n, i) => assert.equal(sha(readFileSync(join(local, n))), sha(encodeFile('tiff', 'uint8', SHAPE, [expectedFrame(SEED, i, 'uint8', SHAPE)])), n));
    }
  }
}

const logins = (s: Sshd, what: RegExp) => s.log().split('\n').filter((l) => what.test(l)).length;

describe('the lab\'s own SSH setup, no fur credential options', () => {
  test('an alias in an ssh_config given with --ssh-config, through ProxyJump over a second sshd', async () => {
    const config = join(work, 'config-jump');
    writeFileSync(config, [
      hostBlock('archive-alias', target, [`IdentityFile ${target.identityFile}`, 'IdentitiesOnly yes', 'IdentityAgent none', 'ProxyJump jump-alias']),
      hostBlock('jump-alias', jump, [`IdentityFile ${jump.identityFile}`, 'IdentitiesOnly yes', 'IdentityAgent none']),
    ].join('\n'));
    const viaJump = logins(jump, /Accepted publickey for root/);
    await uploadEachMethod(`sftp://archive-alias${target.root}`, 'jump', ['--ssh-config', config]);
    // every connection went through the jump host: it saw a login for each
    assert.ok(logins(jump, /Accepted publickey for root/) - viaJump >= 6, 'logins at the jump host');
  });

  test('an OpenSSH user certificate (ssh-keygen -s), trusted by the server through TrustedUserCAKeys', async () => {
    const key = join(work, 'id_cert_user');
    await keygen('-t', 'ed25519', '-N', '', '-C', 'fur-test-cert-user', '-f', key);
    await keygen('-s', join(work, 'ca'), '-I', 'fur-test-certificate', '-n', 'root', '-V', '-5m:+1h', `${key}.pub`);
    // named apart, so ssh uses it only where the configuration says so
    renameSync(`${key}-cert.pub`, `${key}.certificate`);
    const config = join(work, 'config-cert');
    writeFileSync(config, [
      hostBlock('cert-alias', target, [`IdentityFile ${key}`, `CertificateFile ${key}.certificate`, 'IdentitiesOnly yes', 'IdentityAgent none']),
      hostBlock('no-cert-alias', target, [`IdentityFile ${key}`, 'IdentitiesOnly yes', 'IdentityAgent none']),
    ].join('\n'));
    const before = logins(target, /Accepted publickey for root .* ID fur-test-certificate/);
    await uploadEachMethod(`sftp://cert-alias${target.root}`, 'cert', ['--ssh-config', config]);
    assert.ok(logins(target, /Accepted publickey for root .* ID fur-test-certificate/) > before, 'the server took the certificate');
    // the key alone is not authorized: the certificate is what let it in
    const refused = await fur(['upload', cam, `sftp://no-cert-alias${target.root}/no-cert.h5`, '--ssh-config', config]);
    assert.equal(refused.code, 1, text(refused));
    assert.match(text(refused), /fur: authentication as no-cert-alias failed \(the server accepts: publickey\); check the user name and the key/);
    assert.ok(!existsSync(join(target.root, 'no-cert.h5')));
  });

  test('an encrypted key loaded into an ssh-agent the test starts', async () => {
    const key = join(work, 'id_agent');
    const passphrase = 'correct horse battery staple';
    await keygen('-t', 'ed25519', '-N', passphrase, '-C', 'fur-test-agent-key', '-f', key);
    // encrypted: without its passphrase the key cannot be read
    assert.notEqual((await run('/usr/bin/ssh-keygen', ['-y', '-P', '', '-f', key])).code, 0);
    appendFileSync(target.authorizedKeysFile, readFileSync(`${key}.pub`));
    agent = spawn('/usr/bin/ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 50));
    const askpass = join(work, 'askpass');
    writeFileSync(askpass, '#!/bin/sh\necho "$FUR_TEST_KEY_PASSPHRASE"\n');
    chmodSync(askpass, 0o700);
    await runOk('/usr/bin/ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: agentSock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', FUR_TEST_KEY_PASSPHRASE: passphrase } });
    const fingerprint = (await runOk('/usr/bin/ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.toString().split(' ')[1]!;
    const config = join(work, 'config-agent');
    writeFileSync(config, hostBlock('agent-alias', target, []));
    const before = logins(target, new RegExp(`Accepted publickey for root .* ${fingerprint.replace(/[+/]/g, '\\$&')}`));
    await uploadEachMethod(`sftp://agent-alias${target.root}`, 'agent', ['--ssh-config', config], { SSH_AUTH_SOCK: agentSock });
    assert.ok(logins(target, new RegExp(`Accepted publickey for root .* ${fingerprint.replace(/[+/]/g, '\\$&')}`)) > before, 'the agent\'s key logged in');
  });
});

describe('refusals as ssh reports them', () => {
  const url = (name: string) => `sftp://root@127.0.0.1:${target.port}${target.root}/${name}`;

  test('a host known_hosts does not list: unknown-host-key naming the host and the file; --accept-new-host-key records it', async () => {
    const empty = join(work, 'known_hosts_empty');
    writeFileSync(empty, '');
    const args = ['upload', cam, url('new-host.h5'), '--identity', target.identityFile, '--known-hosts', empty, '--ssh', 'openssh'];
    const r = await fur(args);
    assert.equal(r.code, 1, text(r));
    assert.match(text(r), new RegExp(`fur: host \\[127\\.0\\.0\\.1\\]:${target.port} is not in ${empty}.*--accept-new-host-key`));
    const accepted = await fur([...args, '--accept-new-host-key']);
    assert.equal(accepted.code, 0, text(accepted));
    await assertFrames([join(target.root, 'new-host.h5')]);
    // OpenSSH recorded it (hashed or not, ssh-keygen -F finds it)
    assert.equal((await run('/usr/bin/ssh-keygen', ['-F', `[127.0.0.1]:${target.port}`, '-f', empty])).code, 0);
  });

  test('a key the server does not take: auth-failed naming the user, host and what the server accepts', async () => {
    const stranger = join(work, 'id_stranger');
    await keygen('-t', 'ed25519', '-N', '', '-f', stranger);
    const r = await fur(['upload', cam, url('stranger.h5'), '--identity', stranger, '--known-hosts', knownHosts, '--ssh', 'openssh']);
    assert.equal(r.code, 1, text(r));
    assert.match(text(r), new RegExp(`fur: authentication as root@127\\.0\\.0\\.1:${target.port} failed \\(the server accepts: publickey\\)`));
  });

  test('an encrypted --identity and no agent: the refusal says how to unlock it; the builtin with --passphrase-env logs in', async () => {
    const key = join(work, 'id_locked');
    await keygen('-t', 'ed25519', '-N', 'open sesame', '-C', 'fur-test-locked', '-f', key);
    appendFileSync(target.authorizedKeysFile, readFileSync(`${key}.pub`));
    const args = ['upload', cam, url('locked.h5'), '--identity', key, '--known-hosts', knownHosts];
    const r = await fur([...args, '--ssh', 'openssh']);
    assert.equal(r.code, 2, text(r)); // bad-identity: the command line's key cannot be used as given, bad usage
    assert.match(text(r), new RegExp(`identity file ${key} is encrypted, and ssh cannot ask for its passphrase; load it into ssh-agent \\(ssh-add ${key}\\), or use --ssh builtin with --passphrase-env`));
    const unlocked = await fur([...args, '--passphrase-env', 'FUR_TEST_LOCKED_KEY'], { FUR_TEST_LOCKED_KEY: 'open sesame' });
    assert.equal(unlocked.code, 0, text(unlocked));
    await assertFrames([join(target.root, 'locked.h5')]);
  });

  test('an ssh_config ssh refuses: bad-ssh-config naming the file and its line; a missing one is a usage error', async () => {
    const broken = join(work, 'config-broken');
    writeFileSync(broken, 'Host *\n  NoSuchOption yes\n');
    const r = await fur(['upload', cam, url('broken.h5'), '--ssh-config', broken]);
    assert.equal(r.code, 1, text(r));
    assert.match(text(r), new RegExp(`fur: ssh refuses --ssh-config ${broken}: .*line 2: Bad configuration option: nosuchoption`));
    const missing = await fur(['upload', cam, url('broken.h5'), '--ssh-config', join(work, 'no-such-config')]);
    assert.equal(missing.code, 2, text(missing));
    assert.match(text(missing), /--ssh-config .*no-such-config: no such file/);
  });

  test('a changed host key is refused by both transports: exit 1, naming the host and known_hosts, nothing stored', async () => {
    const server = await startSshd({ root: join(work, 'rotated') });
    try {
      for (const ssh of ['openssh', 'builtin']) {
        const ok = await fur(['upload', cam, `sftp://root@127.0.0.1:${server.port}${server.root}/before-${ssh}.h5`, '--identity', server.identityFile, '--known-hosts', server.knownHostsFile, '--ssh', ssh]);
        assert.equal(ok.code, 0, text(ok));
      }
      await server.rotateHostKey();
      for (const ssh of ['openssh', 'builtin']) {
        const r = await fur(['upload', cam, `sftp://root@127.0.0.1:${server.port}${server.root}/after-${ssh}.h5`, '--identity', server.identityFile, '--known-hosts', server.knownHostsFile, '--ssh', ssh]);
        assert.equal(r.code, 1, `${ssh}: ${text(r)}`);
        const line = text(r).trim().split('\n').pop()!;
        assert.match(line, new RegExp(`^fur: host key of \\[127\\.0\\.0\\.1\\]:${server.port} changed \\(now .*SHA256:\\S+\\), which may mean someone is intercepting the connection; if the change is expected, delete line 1 of ${server.knownHostsFile} `), `${ssh}: ${line}`);
        assert.ok(!existsSync(join(server.root, `after-${ssh}.h5`)), `${ssh}: nothing stored`);
      }
    } finally {
      await server.dispose();
    }
  });
});

describe('channels over OpenSSH', () => {
  for (const sshMux of [true, false]) {
    test(`three channels, ${sshMux ? 'multiplexed (the default): one login, through the first ssh\'s control socket' : 'not multiplexed: a connection and a login each'}`, async () => {
      const accepted = logins(target, /Accepted publickey for root/);
      const sessions = logins(target, /Starting session: subsystem 'sftp' for root/);
      const dest = (await openDestination(`sftp://root@127.0.0.1:${target.port}${target.root}`, {
        ssh: 'openssh', identity: target.identityFile, knownHosts, agent: false, channels: 3, sshMux,
      })) as SftpDestination;
      try {
        for (let i = 0; i < 1000 && dest.pool.lanes.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(dest.pool.lanes.length, 3);
        const data = Buffer.alloc(12 * 1024 * 1024, 0x5a);
        for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
        const f = await dest.openWrite(`channels-${sshMux}.bin`, { truncate: true, bulk: true });
        void f.write(0, data);
        await f.close();
        assert.ok(readFileSync(join(target.root, `channels-${sshMux}.bin`)).equals(data));
      } finally {
        await dest.close();
      }
      assert.equal(logins(target, /Starting session: subsystem 'sftp' for root/) - sessions, 3, 'SFTP sessions at the server');
      assert.equal(logins(target, /Accepted publickey for root/) - accepted, sshMux ? 1 : 3, 'logins at the server');
    });
  }
});

for (const ssh of ['openssh', 'builtin'] as const) {
  destinationContract(`OpenSSH's sshd through fur's ${ssh} transport`, async () => {
    const server = await startSshd();
    const dest = await openDestination(`sftp://root@127.0.0.1:${server.port}${server.root}`, { ssh, identity: server.identityFile, knownHosts: server.knownHostsFile, agent: false });
    return { dest, localRoot: server.root, cleanup: () => server.dispose() };
  });
}
