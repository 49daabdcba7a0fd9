// FTPS destination against ftp-srv over TLS with a certificate made here: the Destination contract,
// TLS trust and refusals, logins, resume of a cut upload, missing commands, parallel transfers.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FtpsDestination, type FtpsOptions } from '../../src/transport/ftps.js';
import { makeCertificate } from '../../harness/certificate.js';
import { openDestination } from '../../src/transport/open.js';
import { parseDestinationUrl, type SshLikeUrl } from '../../src/transport/url.js';
import { destinationContract } from './contract.js';
import { startFtpsServer, type FtpsServer, type FtpsServerOptions } from './ftps-server.js';
import { pattern, rejectsWith, scratch } from './helpers.js';

const PASSWORD_ENV = 'FUR_TEST_FTPS_PASSWORD';
process.env[PASSWORD_ENV] = 'secret';

interface Fixture { server: FtpsServer; root: string; caFile: string; cleanup(): Promise<void> }

async function fixture(o: Partial<FtpsServerOptions> = {}): Promise<Fixture> {
  const { dir, cleanup } = await scratch('fur-ftps-');
  const server = await startFtpsServer({ root: join(dir, 'root'), password: 'secret', ...o });
  const caFile = join(dir, 'server.pem');
  await writeFile(caFile, server.certificate.cert);
  return { server, root: join(dir, 'root'), caFile, cleanup: async () => { await server.close(); await cleanup(); } };
}

function target(f: Fixture, path = '/'): SshLikeUrl<'ftps'> {
  return parseDestinationUrl(f.server.url(path)) as SshLikeUrl<'ftps'>;
}

function connect(f: Fixture, path = '/', extra: FtpsOptions = {}): Promise<FtpsDestination> {
  return FtpsDestination.connect(target(f, path), { passwordEnv: PASSWORD_ENV, caFile: f.caFile, ...extra });
}

/** Reads `ranges` of ranges.bin (holding `data`), each checked, with a stat after each: the control connection answers in step. */
async function readRanges(d: FtpsDestination, data: Uint8Array, ranges: [number, number][]): Promise<void> {
  const r = await d.openRead('ranges.bin');
  for (const [at, n] of ranges) {
    assert.ok(Buffer.from(await r.read(at, n)).equals(data.subarray(at, at + n)), `bytes ${at}+${n}`);
    assert.equal((await d.stat('ranges.bin'))?.size, data.length);
  }
  await r.close();
}

destinationContract('ftps', async () => {
  const f = await fixture();
  return { dest: await connect(f), localRoot: f.root, cleanup: f.cleanup };
});

describe('ftps destination', () => {
  let f: Fixture;
  before(async () => { f = await fixture(); });
  after(async () => { await f.cleanup(); });

  it('opens from an ftps:// URL; cannot write at an offset, so append is not offered', async () => {
    const d = await openDestination(f.server.url('/'), { passwordEnv: PASSWORD_ENV, caFile: f.caFile });
    try {
      assert.equal(d.capabilities.positionalWrite, false);
      assert.equal(d.capabilities.rename, true);
      assert.match(d.url, /^ftps:\/\/lab@127\.0\.0\.1:\d+\/$/);
    } finally {
      await d.close();
    }
  });

  it('creates a missing root only when asked', async () => {
    await rejectsWith(connect(f, '/not/there'), 'not-found');
    const d = await connect(f, '/made/here', { createRoot: true });
    await d.close();
    assert.equal((await readFile(join(f.root, 'made', 'here', '..', '..', 'made', 'here', '.'), { encoding: 'utf8' }).catch((e: NodeJS.ErrnoException) => e.code)), 'EISDIR');
  });

  it('refuses a certificate it was not told to trust, naming --ca-file', async () => {
    const e = await rejectsWith(FtpsDestination.connect(target(f), { passwordEnv: PASSWORD_ENV }), 'tls-certificate');
    assert.match(e.message, /self-signed/);
    assert.match(e.message, /--ca-file/);
  });

  it('trusts a CA file: a server certificate signed by that CA', async () => {
    const ca = makeCertificate({ commonName: 'fur test CA', ca: true });
    const leaf = makeCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
    const g = await fixture({ certificate: leaf });
    try {
      await writeFile(g.caFile, ca.cert);
      const d = await connect(g);
      await d.close();
    } finally {
      await g.cleanup();
    }
  });

  it('refuses a certificate for another name, saying which names it is for', async () => {
    const other = makeCertificate({ dnsNames: ['archive.lab'] });
    const g = await fixture({ certificate: other });
    try {
      await writeFile(g.caFile, other.cert);
      const e = await rejectsWith(connect(g), 'tls-certificate');
      assert.match(e.message, /archive\.lab/);
      assert.doesNotMatch(e.message, /\n/);
    } finally {
      await g.cleanup();
    }
  });

  it('refuses a server that offers no TLS before sending the password', async () => {
    const g = await fixture({ plain: true });
    try {
      const e = await rejectsWith(connect(g), 'tls-unavailable');
      assert.match(e.message, /AUTH TLS/);
    } finally {
      await g.cleanup();
    }
  });

  it('speaks implicit TLS when asked', async () => {
    const g = await fixture({ implicit: true });
    try {
      const d = await connect(g, '/', { implicitTls: true });
      await d.close();
      // explicit TLS against an implicit server fails to connect, it does not hang
      await rejectsWith(connect(g, '/', { timeoutMs: 3000 }), 'connect-failed');
    } finally {
      await g.cleanup();
    }
  });

  it('reports a wrong password as auth-failed, naming the variable, never the password', async () => {
    process.env.FUR_TEST_FTPS_WRONG = 'not-the-password';
    const e = await rejectsWith(FtpsDestination.connect(target(f), { passwordEnv: 'FUR_TEST_FTPS_WRONG', caFile: f.caFile }), 'auth-failed');
    assert.match(e.message, /FUR_TEST_FTPS_WRONG/);
    assert.doesNotMatch(e.message, /not-the-password/);
    await rejectsWith(FtpsDestination.connect(target(f), { caFile: f.caFile }), 'auth-failed');
  });

  it('resumes an upload cut mid-stream with SIZE + APPE, byte-exact', async () => {
    const d = await connect(f);
    try {
      const data = pattern(6 << 20, 3);
      f.server.cutUploads(2_500_000);
      const before = { ...f.server.stats };
      const w = await d.openWrite('resumed.bin', { truncate: true });
      await w.write(0, data);
      await w.close();
      assert.equal(f.server.stats.cuts, before.cuts + 1, 'the upload was cut once');
      assert.equal(f.server.stats.appends, before.appends + 1, 'and continued with APPE');
      assert.ok((await readFile(join(f.root, 'resumed.bin'))).equals(data));
    } finally {
      await d.close();
    }
  });

  it('without APPE, starts a cut upload again from the beginning, and says so', async () => {
    const g = await fixture({ without: ['APPE'] });
    const warnings: string[] = [];
    const d = await connect(g, '/', { warn: (m) => warnings.push(m) });
    try {
      const data = pattern(3 << 20, 4);
      g.server.cutUploads(1_000_000);
      const w = await d.openWrite('again.bin', { truncate: true });
      await w.write(0, data);
      await w.close();
      assert.ok((await readFile(join(g.root, 'again.bin'))).equals(data));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /does not support APPE.*from the beginning/);
    } finally {
      await d.close();
      await g.cleanup();
    }
  });

  it('without rename, fails with one clear line and leaves the temporary name only', async () => {
    const g = await fixture({ without: ['RNFR', 'RNTO'] });
    const d = await connect(g);
    try {
      const w = await d.openWrite('x.h5.fur-partial', { truncate: true });
      await w.write(0, Buffer.from('frames'));
      await w.close();
      const e = await rejectsWith(d.rename('x.h5.fur-partial', 'x.h5'), 'rename-unsupported');
      assert.match(e.message, /does not rename files/);
      assert.doesNotMatch(e.message, /\n/);
      assert.equal(await d.stat('x.h5'), null);
    } finally {
      await d.close();
      await g.cleanup();
    }
  });

  it('carries several files at once, one transfer per control connection', async () => {
    const d = await connect(f, '/', { connections: 4 });
    try {
      const data = pattern(4 << 20, 5);
      const before = f.server.stats.maxTransfers;
      await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const w = await d.openWrite(`par${i}.bin`, { truncate: true });
        await w.write(0, data);
        await w.close();
      }));
      for (let i = 0; i < 8; i++) assert.ok((await readFile(join(f.root, `par${i}.bin`))).equals(data));
      assert.ok(f.server.stats.maxTransfers >= 2, `at most ${f.server.stats.maxTransfers} transfers at once (was ${before})`);
      assert.ok(f.server.stats.maxTransfers <= 4 + before, 'never more than the pool allows');
    } finally {
      await d.close();
    }
  });

  it('survives the server dropping every connection between operations', async () => {
    const d = await connect(f);
    try {
      await d.mkdirp('drop');
      f.server.dropConnections();
      assert.deepEqual(await d.list('drop'), []);
      const w = await d.openWrite('drop/after.bin', { truncate: true });
      await w.write(0, Buffer.from('still here'));
      await w.close();
      assert.equal(await readFile(join(f.root, 'drop', 'after.bin'), 'utf8'), 'still here');
    } finally {
      await d.close();
    }
  });

  it('reads ranges of a large file without fetching all of it', async () => {
    const data = pattern(5 << 20, 6);
    await writeFile(join(f.root, 'big.bin'), data);
    const d = await connect(f);
    try {
      const r = await d.openRead('big.bin');
      assert.equal(await r.size(), data.length);
      assert.ok(Buffer.from(await r.read(3_000_000, 1000)).equals(data.subarray(3_000_000, 3_001_000)));
      assert.ok(Buffer.from(await r.read(0, 48)).equals(data.subarray(0, 48)));
      await r.close();
    } finally {
      await d.close();
    }
  });

  it('reads many ranges of a large file on one control connection: a transfer cut short costs no new login', async () => {
    const data = pattern(24 << 20, 7);
    await writeFile(join(f.root, 'ranges.bin'), data);
    const d = await connect(f, '/', { connections: 1 });
    try {
      const logins = f.server.stats.logins;
      await readRanges(d, data, [[0, 100], [9 << 20, 2 << 20], [1 << 20, 3000], [20 << 20, 1 << 20], [5, 4 << 20]]);
      assert.equal(f.server.stats.logins, logins, 'no login after the first');
    } finally {
      await d.close();
    }
  });

  it('a server that never answers a transfer cut short (ftp-srv\'s own way): ranges still come right, on new connections', async () => {
    const g = await fixture({ silentAfterCut: true });
    const data = pattern(24 << 20, 8);
    await writeFile(join(g.root, 'ranges.bin'), data);
    const d = await connect(g, '/', { connections: 1 });
    try {
      const logins = g.server.stats.logins;
      await readRanges(d, data, [[0, 100], [9 << 20, 2 << 20], [20 << 20, 1 << 20]]);
      assert.equal(g.server.stats.logins, logins + 3, 'each cut transfer cost its control connection');
    } finally {
      await d.close();
      await g.cleanup();
    }
  });
});
