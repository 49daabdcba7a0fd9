// The part sink of the S3 append method: file offsets after the front region become parts sent
// in any order once whole; holes hold their part back; a part sent cannot change; a checkpoint and
// its extents are enough to continue the same upload in a new sink.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { isFurError } from '../../src/errors.js';
import { S3Destination } from '../../src/transport/s3.js';
import { Ranges, S3PartSink, type Extent } from '../../src/transport/s3-append.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { MiB, MIN_PART } from '../../src/transport/s3-upload.js';
import { pattern, rejectsWith, scratch } from './helpers.js';

describe('Ranges', () => {
  it('merges, covers, clips', () => {
    const r = new Ranges();
    r.add(10, 20); r.add(30, 40); r.add(20, 25); r.add(0, 5); r.add(24, 31);
    assert.deepEqual(r.list, [[0, 5], [10, 40]]);
    assert.ok(r.covers(12, 39));
    assert.ok(!r.covers(4, 11));
    assert.deepEqual(r.within(3, 12), [[3, 5], [10, 12]]);
  });
});

/** the front region the writer keeps rewriting (sent last, as part 1): S3's smallest part */
const META_END = MIN_PART;

describe('S3 part sink', () => {
  let server: S3Server;
  let dest: S3Destination;
  let cleanup: () => Promise<void>;
  before(async () => {
    const s = await scratch('fur-s3-sink-');
    cleanup = s.cleanup;
    server = await startS3Server({ root: join(s.dir, 'store'), buckets: ['lab'], certificate: false });
    dest = await S3Destination.connect({ bucket: 'lab', prefix: '', params: {} }, { endpoint: server.endpoint, credentials: server.credentials, partSize: 5 * MiB });
  });
  after(async () => { await dest.close(); await server.close(); await cleanup(); });

  async function begin(key: string): Promise<S3PartSink> {
    const r = await dest.client.send(new CreateMultipartUploadCommand({ Bucket: 'lab', Key: key, ChecksumAlgorithm: 'SHA256' }));
    return new S3PartSink(dest.uploader, key, r.UploadId!, { metaEnd: META_END });
  }

  it('streams whole parts as data arrives; a part with a hole waits until it is filled; metadata goes last as part 1', async () => {
    const sink = await begin('a.h5');
    const data = pattern(22 * MiB, 1);
    const file = new Uint8Array(META_END + data.length);
    file.set(data, META_END);
    // the superblock and headers, rewritten at will
    await sink.write(0, data.subarray(0, 100));
    file.set(data.subarray(0, 100), 0);
    // a small chunk allocated at the start of the data and filled later (a hole of 4 KiB)
    await sink.write(META_END + 4096, data.subarray(4096, 11 * MiB));
    const sentEarly = server.log.filter((l) => l.op === 'UploadPart' && l.key === 'a.h5').map((l) => l.partNumber);
    assert.deepEqual(sentEarly, [], 'the part with the hole is held, nothing else is complete yet');
    await sink.write(META_END + 11 * MiB, data.subarray(11 * MiB, 16 * MiB));
    // part 3 (whole) may go; part 2 waits for its hole
    assert.ok(!server.log.some((l) => l.op === 'UploadPart' && l.partNumber === 2));
    await sink.write(META_END, data.subarray(0, 4096));
    await sink.write(META_END + 16 * MiB, data.subarray(16 * MiB));
    const done = await sink.complete();
    assert.equal(done.size, file.length);
    assert.ok((await server.object('lab', 'a.h5'))!.equals(Buffer.from(file)));
    const order = server.log.filter((l) => l.op === 'UploadPart' && l.key === 'a.h5').map((l) => l.partNumber);
    assert.equal(order[order.length - 1], 1, 'part 1 last');
  });

  it('refuses a front region smaller than S3\'s smallest part (it is sent as part 1)', () => {
    assert.throws(() => new S3PartSink(dest.uploader, 'small.h5', 'no-upload', { metaEnd: MIN_PART - 1 }),
      (e) => isFurError(e, 'internal') && /front region of 5242879 bytes cannot be part 1/.test(e.message));
  });

  it('refuses to change bytes already sent', async () => {
    const sink = await begin('b.h5');
    await sink.write(META_END, pattern(12 * MiB, 2));
    await sink.checkpoint();
    const e = await rejectsWith(sink.write(META_END + 10, new Uint8Array(5)), 'append-order');
    assert.match(e.message, /already sent in part 2/);
    await sink.abort();
  });

  it('continues the same upload from a checkpoint and its extents, in a new sink', async () => {
    const data = pattern(30 * MiB, 3);
    const want = new Uint8Array(META_END + data.length);
    want.set(data, META_END);
    want.set(data.subarray(0, 300), 0);
    const a = await begin('c.h5');
    await a.write(0, data.subarray(0, 300));
    await a.write(META_END + 1000, data.subarray(1000, 9 * MiB)); // hole [0, 1000)
    const first = await a.checkpoint();
    await a.write(META_END + 9 * MiB, data.subarray(9 * MiB, 17 * MiB + 5));
    const second = await a.checkpoint();
    const extents: Extent[] = [...first.extents, ...second.extents];
    // stored extents: only bytes in no part
    for (const x of extents) for (const p of second.state.parts) assert.ok(x.offset + x.bytes.length <= p.offset || x.offset >= p.offset + p.size || first.extents.includes(x));
    // more is written, then the process dies: whatever it sent after the checkpoint is ignored
    await a.write(META_END + 17 * MiB + 5, pattern(6 * MiB, 99));
    await a.close();

    const b = new S3PartSink(dest.uploader, 'c.h5', a.uploadId, { metaEnd: META_END, resume: { state: second.state, extents } });
    assert.equal(await b.size(), META_END + 17 * MiB + 5);
    assert.ok(Buffer.from(await b.read(0, 300)).equals(data.subarray(0, 300)));
    await b.write(META_END, data.subarray(0, 1000));
    await b.write(META_END + 17 * MiB + 5, data.subarray(17 * MiB + 5));
    await b.complete();
    assert.ok((await server.object('lab', 'c.h5'))!.equals(Buffer.from(want)));
  });
});
