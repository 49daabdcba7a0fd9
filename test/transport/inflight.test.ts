import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteTracker } from '../../src/transport/inflight.js';

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
