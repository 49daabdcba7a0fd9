// The exclusive record every destination offers (Destination.exclusive), on each kind: of several
// runs creating it at once exactly one succeeds, from separate connections; it reads back, is
// overwritten only while it exists, and is removed. S3 twice: a store that honours If-None-Match,
// and one that ignores it (the claims the record falls back to).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { FurError } from '../../src/errors.js';
import type { Destination } from '../../src/transport/destination.js';
import { FileDestination } from '../../src/transport/file.js';
import { FtpsDestination } from '../../src/transport/ftps.js';
import { S3Destination } from '../../src/transport/s3.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { markerKey } from '../../src/transport/s3-upload.js';
import { SftpDestination } from '../../src/transport/sftp.js';
import { parseDestinationUrl, type SshLikeUrl } from '../../src/transport/url.js';
import { startFtpsServer } from './ftps-server.js';
import { scratch, sftpFixture } from './helpers.js';

interface Kind {
  name: string;
  /** `n` destinations on one store, as `n` runs would each connect; the store's cleanup; S3: its keys */
  open(n: number): Promise<{ dests: Destination[]; cleanup(): Promise<void>; keys?: () => string[]; s3?: S3Server }>;
}

const FTPS_ENV = 'FUR_TEST_EXCLUSIVE_FTPS_PASSWORD';
process.env[FTPS_ENV] = 'secret';

const KINDS: Kind[] = [
  {
    name: 'file',
    async open(n) {
      const { dir, cleanup } = await scratch('fur-exclusive-');
      return { dests: await Promise.all(Array.from({ length: n }, () => FileDestination.open(dir))), cleanup };
    },
  },
  ...[true, false].map((extensions): Kind => ({
    name: `sftp (${extensions ? 'with' : 'without'} OpenSSH extensions)`,
    async open(n) {
      const fx = await sftpFixture({ extensions });
      const t = parseDestinationUrl(fx.server.url('u', '/')) as SshLikeUrl<'sftp'>;
      const dests = await Promise.all(Array.from({ length: n }, () => SftpDestination.connect(t, fx.options)));
      return { dests, cleanup: fx.cleanup };
    },
  })),
  {
    name: 'ftps',
    async open(n) {
      const { dir, cleanup } = await scratch('fur-exclusive-ftps-');
      const server = await startFtpsServer({ root: join(dir, 'root'), password: 'secret' });
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, server.certificate.cert);
      const t = parseDestinationUrl(server.url('/')) as SshLikeUrl<'ftps'>;
      const dests = await Promise.all(Array.from({ length: n }, () => FtpsDestination.connect(t, { passwordEnv: FTPS_ENV, caFile })));
      return { dests, cleanup: async () => { await server.close(); await cleanup(); } };
    },
  },
  ...[true, false].map((conditionalWrites): Kind => ({
    name: `s3 (${conditionalWrites ? 'honours' : 'ignores'} If-None-Match)`,
    async open(n) {
      const { dir, cleanup } = await scratch('fur-exclusive-s3-');
      const server = await startS3Server({ root: join(dir, 'store'), buckets: ['lab'], conditionalWrites });
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, server.certificate!.cert);
      const dests = await Promise.all(Array.from({ length: n }, () =>
        S3Destination.connect({ bucket: 'lab', prefix: 'runs', params: {} }, { endpoint: server.endpoint, caFile, credentials: server.credentials })));
      return { dests, cleanup: async () => { await server.close(); await cleanup(); }, keys: () => server.keys('lab'), s3: server };
    },
  })),
];

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString());

for (const kind of KINDS) {
  describe(`${kind.name}: exclusive record`, () => {
    it('of six runs creating it at once exactly one succeeds, and the record holds its bytes', async () => {
      const { dests, cleanup, keys } = await kind.open(6);
      try {
        const made = await Promise.all(dests.map((d, i) => d.exclusive('.run.h5.fur-lease').create(bytes(`run ${i}`))));
        assert.equal(made.filter(Boolean).length, 1, `created: ${made}`);
        // S3: one object where the store honours the condition, one claim beside nothing else where it does not
        if (keys) assert.match(keys().join(' '), kind.name.includes('honours') ? /^runs\/\.run\.h5\.fur-lease$/ : /^runs\/\.run\.h5\.fur-lease\/[0-9a-f]{16}$/);
        const winner = made.indexOf(true);
        for (const d of dests) assert.equal(text(await d.exclusive('.run.h5.fur-lease').read()), `run ${winner}`);
        // the others find it there, however often they try
        for (const [i, d] of dests.entries()) if (i !== winner) assert.equal(await d.exclusive('.run.h5.fur-lease').create(bytes('late')), false);
      } finally {
        for (const d of dests) await d.close();
        await cleanup();
      }
    });

    it('is overwritten only while it exists; once removed it reads as none and can be made again', async () => {
      const { dests: [d], cleanup } = await kind.open(1);
      try {
        const r = d!.exclusive('sub.fur-lease');
        assert.equal(await r.read(), null);
        assert.equal(await r.replace(bytes('nothing to replace')), false);
        assert.equal(await r.read(), null, 'replace never creates it');
        assert.equal(await r.create(bytes('first')), true);
        assert.equal(await r.replace(bytes('second')), true);
        assert.equal(text(await r.read()), 'second');
        await r.remove();
        await r.remove();
        assert.equal(await r.read(), null);
        assert.equal(await d!.exclusive('sub.fur-lease').replace(bytes('again')), false);
        assert.equal(await d!.exclusive('sub.fur-lease').create(bytes('third')), true);
        assert.equal(text(await d!.exclusive('sub.fur-lease').read()), 'third');
      } finally {
        await d!.close();
        await cleanup();
      }
    });
  });
}

describe('s3: a run trying for the record', () => {
  for (const conditionalWrites of [true, false]) {
    it(`(${conditionalWrites ? 'conditional PUT' : 'claims'}) leaves the holder's multipart uploads alone: no sweep before it holds anything`, async () => {
      const kind = KINDS.find((k) => k.name === `s3 (${conditionalWrites ? 'honours' : 'ignores'} If-None-Match)`)!;
      const { dests: [holder, late], cleanup, s3 } = await kind.open(2);
      try {
        assert.equal(await holder!.exclusive('.fur-lease').create(bytes('holder')), true);
        // the holder's upload in progress, recorded as fur records its own
        const client = (holder as S3Destination).client;
        const up = await client.send(new CreateMultipartUploadCommand({ Bucket: 'lab', Key: 'runs/run.h5' }));
        await client.send(new PutObjectCommand({ Bucket: 'lab', Key: markerKey('runs/run.h5', up.UploadId!), Body: JSON.stringify({ key: 'runs/run.h5', uploadId: up.UploadId }) }));
        assert.equal(await late!.exclusive('.fur-lease').create(bytes('late')), false);
        assert.equal(text(await late!.exclusive('.fur-lease').read()), 'holder');
        assert.deepEqual(s3!.uploads('lab').map((u) => u.uploadId), [up.UploadId]);
      } finally {
        await holder!.close();
        await late!.close();
        await cleanup();
      }
    });
  }
});

describe('a server that refuses to open an existing file for writing (ProFTPD: AllowOverwrite off)', () => {
  /**
   * a folder destination whose opens of an existing file for writing are refused, as ProFTPD's:
   * recognised as its policy (while fur holds the file open), or a plain permission error
   */
  function noOverwrite(real: Destination, tag: 'overwrite-refused' | 'permission-denied'): Destination {
    return new Proxy(real, {
      get(target, key, receiver) {
        if (key === 'openWrite') {
          return async (path: string, opts?: Parameters<Destination['openWrite']>[1] & { existing?: boolean }) => {
            if (opts?.existing && (await target.stat(path)) !== null) throw new FurError(tag, `open for writing ${path}: refused`, { path });
            return target.openWrite(path, opts);
          };
        }
        return Reflect.get(target, key, receiver);
      },
    });
  }

  for (const tag of ['overwrite-refused', 'permission-denied'] as const) it(`renews the record by removing and creating it (the open refused: ${tag}): its new content reads back; one removed meanwhile stays gone`, async () => {
    const { dir, cleanup } = await scratch('fur-exclusive-noover-');
    const d = noOverwrite(await FileDestination.open(dir), tag);
    try {
      const record = d.exclusive('.fur-lease');
      assert.equal(await record.create(bytes('first')), true);
      assert.equal(await record.replace(bytes('renewed')), true);
      assert.equal(text(await record.read()), 'renewed');
      // a second run still cannot create it
      assert.equal(await d.exclusive('.fur-lease').create(bytes('other')), false);
      await record.remove();
      assert.equal(await record.replace(bytes('again')), false);
      assert.equal(await record.read(), null);
    } finally {
      await d.close();
      await cleanup();
    }
  });
});
