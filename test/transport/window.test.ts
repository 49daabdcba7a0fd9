import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestWindow } from '../../src/transport/sftp-window.js';
import { WriteTracker } from '../../src/transport/inflight.js';

describe('request window', () => {
  it('bounds requests and bytes in flight and sends in submission order', () => {
    const w = new RequestWindow(3, 100);
    const sent: number[] = [];
    const releases: Array<() => void> = [];
    for (let i = 0; i < 6; i++) w.submit(40, (release) => { sent.push(i); releases.push(release); });
    assert.deepEqual(sent, [0, 1], 'the third 40-byte request would exceed 100 bytes');
    assert.deepEqual(w.outstanding, { requests: 2, bytes: 80, queued: 4 });
    releases[0]();
    releases[0](); // a double release must not free two slots
    assert.deepEqual(sent, [0, 1, 2]);
    assert.deepEqual(w.outstanding, { requests: 2, bytes: 80, queued: 3 });
    const w2 = new RequestWindow(2, 1_000_000);
    const sent2: number[] = [];
    for (let i = 0; i < 5; i++) w2.submit(1, () => sent2.push(i));
    assert.deepEqual(sent2, [0, 1], 'request count bound');
  });

  it('admits a request larger than the byte bound when nothing is in flight', () => {
    const w = new RequestWindow(4, 10);
    let sent = 0;
    w.submit(50, () => sent++);
    assert.equal(sent, 1);
  });

  it('copes with a release inside send (a synchronous failure)', () => {
    const w = new RequestWindow(1, 10);
    const sent: number[] = [];
    for (let i = 0; i < 4; i++) w.submit(1, (release) => { sent.push(i); release(); });
    assert.deepEqual(sent, [0, 1, 2, 3]);
    assert.deepEqual(w.outstanding, { requests: 0, bytes: 0, queued: 0 });
  });
});

describe('write tracker', () => {
  it('keeps the first failure and does not crash on unawaited rejections', async () => {
    const t = new WriteTracker();
    const first = new Error('first');
    t.track(Promise.reject(first)); // never awaited by the caller
    t.track(Promise.reject(new Error('second')));
    const ok = t.track(Promise.resolve());
    await ok;
    await assert.rejects(t.barrier(), (e) => e === first);
    assert.equal(t.inFlight, 0);
  });

  it('a barrier waits only for writes tracked before it', async () => {
    const t = new WriteTracker();
    let release!: () => void;
    t.track(new Promise<void>((r) => { release = r; }));
    let done = false;
    const b = t.barrier().then(() => { done = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(done, false);
    release();
    await b;
    assert.equal(done, true);
  });
});
