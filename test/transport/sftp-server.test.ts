// The in-process server seen through a bare ssh2 client, so the requests are exactly the ones
// written here (fur's destination would normalise or avoid some of them).
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { isFurError } from '../../src/errors.js';
import { PASSWORD, scratch, sftpFixture, type ServerFixture } from './helpers.js';

async function rawClient(fx: ServerFixture): Promise<{ sftp: SFTPWrapper; end: () => void }> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.on('error', reject);
    client.on('ready', () => client.sftp((err, sftp) => (err ? reject(err) : resolve({ sftp, end: () => client.end() }))));
    client.connect({
      host: '127.0.0.1', port: fx.server.port, username: 'raw', password: PASSWORD,
      hostVerifier: (key: Buffer) => key.equals(fx.server.hostKey),
    });
  });
}

/** The SFTP status code a call fails with (0 when it succeeds). */
function status(start: (cb: (err?: Error | null) => void) => void): Promise<number> {
  return new Promise((resolve) => start((err) => resolve(err ? Number((err as { code?: number }).code) : 0)));
}

const NO_SUCH_FILE = 2, PERMISSION_DENIED = 3, FAILURE = 4, OP_UNSUPPORTED = 8;

describe('in-process sftp server', () => {
  let fx: ServerFixture;
  let outside: { dir: string; cleanup: () => Promise<void> };
  let c: { sftp: SFTPWrapper; end: () => void };
  before(async () => {
    fx = await sftpFixture();
    outside = await scratch('fur-outside-');
    await writeFile(join(outside.dir, 'secret'), 'outside the root');
    c = await rawClient(fx);
  });
  after(async () => { c.end(); await fx.cleanup(); await outside.cleanup(); });

  it('announces posix-rename and fsync', () => {
    const ext = (c.sftp as unknown as { _extensions: Record<string, string> })._extensions;
    assert.deepEqual(ext, { 'posix-rename@openssh.com': '1', 'fsync@openssh.com': '1' });
  });

  it('serves the root as / and resolves .. inside it', async () => {
    const real = (p: string) => new Promise<string>((res, rej) => c.sftp.realpath(p, (e, r) => (e ? rej(e) : res(r))));
    assert.equal(await real('.'), '/');
    assert.equal(await real('/a/b/../c'), '/a/c');
  });

  it('refuses .. that climbs out of the root, for reads, writes and listings', async () => {
    const rel = `../${outside.dir.split('/').filter(Boolean).map(() => '..').join('/')}${outside.dir}/secret`;
    assert.equal(await status((cb) => c.sftp.stat('/../etc/passwd', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.open(rel, 'r', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.open('/../escaped', 'w', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.readdir('/..', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.rename('/../x', '/y', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.mkdir('/sub/../../up', cb)), PERMISSION_DENIED);
  });

  it('refuses symbolic links that lead out of the root, and does not create links', async () => {
    await symlink(outside.dir, join(fx.root, 'link-out'));
    await symlink(join(outside.dir, 'secret'), join(fx.root, 'secret-link'));
    assert.equal(await status((cb) => c.sftp.open('/link-out/secret', 'r', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.open('/secret-link', 'r', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.open('/link-out/new', 'w', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.readdir('/link-out', cb)), PERMISSION_DENIED);
    assert.equal(await status((cb) => c.sftp.readlink('/secret-link', cb)), PERMISSION_DENIED);
    // lstat of the link itself is fine: it does not follow it.
    assert.equal(await status((cb) => c.sftp.lstat('/secret-link', cb)), 0);
    assert.equal(await status((cb) => c.sftp.symlink('/etc', '/made-link', cb)), OP_UNSUPPORTED);
    assert.equal(await readFile(join(outside.dir, 'secret'), 'utf8'), 'outside the root');
  });

  it('plain rename refuses to replace; posix-rename replaces', async () => {
    await writeFile(join(fx.root, 'r-src'), 'new');
    await writeFile(join(fx.root, 'r-dst'), 'old');
    assert.equal(await status((cb) => c.sftp.rename('/r-src', '/r-dst', cb)), FAILURE);
    assert.equal(await readFile(join(fx.root, 'r-dst'), 'utf8'), 'old');
    assert.equal(await status((cb) => c.sftp.ext_openssh_rename('/r-src', '/r-dst', cb)), 0);
    assert.equal(await readFile(join(fx.root, 'r-dst'), 'utf8'), 'new');
  });

  it('answers missing paths with NO_SUCH_FILE and lists directories', async () => {
    assert.equal(await status((cb) => c.sftp.stat('/nope', cb)), NO_SUCH_FILE);
    assert.equal(await status((cb) => c.sftp.open('/nope/x', 'w', cb)), NO_SUCH_FILE);
    await mkdir(join(fx.root, 'dir'));
    for (let i = 0; i < 250; i++) await writeFile(join(fx.root, 'dir', `f${String(i).padStart(3, '0')}`), String(i));
    const names = await new Promise<string[]>((res, rej) =>
      c.sftp.readdir('/dir', (e, list) => (e ? rej(e) : res(list.map((x) => x.filename)))));
    assert.equal(names.length, 250, 'listing spans several READDIR batches');
    assert.deepEqual(names.sort().slice(0, 2), ['f000', 'f001']);
  });

  it('supports setstat and fsetstat for size, mode and times', async () => {
    await writeFile(join(fx.root, 'attrs'), '0123456789');
    assert.equal(await status((cb) => c.sftp.setstat('/attrs', { size: 4, mode: 0o600, mtime: 1_000_000_000, atime: 1_000_000_000 }, cb)), 0);
    const st = await new Promise<ssh2.Stats>((res, rej) => c.sftp.stat('/attrs', (e, s) => (e ? rej(e) : res(s))));
    assert.equal(st.size, 4);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.mtime, 1_000_000_000);
    const handle = await new Promise<Buffer>((res, rej) => c.sftp.open('/attrs', 'r+', (e, h) => (e ? rej(e) : res(h))));
    assert.equal(await status((cb) => c.sftp.fsetstat(handle, { size: 2 }, cb)), 0);
    assert.equal(await status((cb) => c.sftp.close(handle, cb)), 0);
    assert.equal(await readFile(join(fx.root, 'attrs'), 'utf8'), '01');
    assert.equal(await status((cb) => c.sftp.close(handle, cb)), FAILURE, 'a closed handle is invalid');
  });
});

describe('in-process sftp server: refusals', () => {
  it('rejects a server nobody could log into', async () => {
    const { startSftpServer } = await import('../../src/demo/sftp-server.js');
    const s = await scratch();
    try {
      await assert.rejects(startSftpServer({ root: s.dir }), (e) => isFurError(e, 'bad-config'));
      await assert.rejects(startSftpServer({ root: join(s.dir, 'missing'), password: 'x' }), (e) => isFurError(e, 'not-found'));
    } finally {
      await s.cleanup();
    }
  });
});
