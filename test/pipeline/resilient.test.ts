/**
 * runResilient across a refused connection: a finished folder is listed while the first
 * connection is made, and again by an attempt that follows a failed one, so files that arrived
 * while the destination was unreachable are not left behind.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FurError, isFurError, type FurErrorTag } from '../../src/errors.js';
import { DEFAULTS } from '../../src/pipeline/options.js';
import { Progress, type RunEvent } from '../../src/pipeline/progress.js';
import { runResilient } from '../../src/pipeline/resilient.js';
import type { Destination } from '../../src/transport/destination.js';
import { FileDestination } from '../../src/transport/file.js';
import { assertCapture, readH5, scratch, writeFrames, type Capture } from './helpers.js';

describe('runResilient', () => {
  test('an attempt after a refused connection lists the folder again: a file written meanwhile is uploaded', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [6, 5], seed: 5, frames: 4 };
    const src = await scratch(t, 'fur-resilient-src-');
    const remote = await scratch(t, 'fur-resilient-dst-');
    await writeFrames(src, c, 0, 3);
    const events: RunEvent[] = [];
    let attempts = 0;
    const summary = await runResilient({
      connect: async () => {
        if (++attempts === 1) {
          // the folder was listed as this attempt began; the instrument writes one more meanwhile
          await writeFrames(src, c, 3, 4);
          throw new FurError('connect-failed', 'refused for the test', {});
        }
        return { dest: await FileDestination.open(remote), path: 'run.h5' };
      },
      giveUpAfterMs: 60_000, initialDelayMs: 1, sourceDir: src, pattern: '*',
      options: { ...DEFAULTS, method: 'append' }, progress: new Progress((e) => events.push(e), { sampleMs: 60_000 }),
    });
    assert.equal(attempts, 2);
    assert.equal(summary.frames, 4);
    assert.ok(events.some((e) => e.type === 'disconnected'));
    assertCapture(await readH5(join(remote, 'run.h5')), c);
  });

  /** A finished capture of three frames, and the spec to upload it with `connect`. */
  async function spec(t: Parameters<typeof scratch>[0], connect: () => Promise<{ dest: Destination; path: string }>, o: { giveUpAfterMs?: number; connectTimeoutMs?: number } = {}) {
    const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [6, 5], seed: 6, frames: 3 };
    const src = await scratch(t, 'fur-resilient-src-');
    await writeFrames(src, c, 0, 3);
    const events: RunEvent[] = [];
    return {
      events,
      spec: {
        connect, giveUpAfterMs: o.giveUpAfterMs ?? 600_000, connectTimeoutMs: o.connectTimeoutMs, initialDelayMs: 1, maxDelayMs: 50, sourceDir: src, pattern: '*',
        options: { ...DEFAULTS, method: 'append' as const }, progress: new Progress((e) => events.push(e), { sampleMs: 60_000 }),
      },
    };
  }

  const notFound = () => new FurError('connect-failed', 'cannot connect to lab@archive.invalid:22: getaddrinfo ENOTFOUND archive.invalid', { code: 'ENOTFOUND' });

  /** A destination that connected, and whose every request then fails as a lost connection does. */
  async function breaking(t: Parameters<typeof scratch>[0], tag: FurErrorTag = 'connection-lost'): Promise<Destination> {
    const real = await FileDestination.open(await scratch(t, 'fur-resilient-dst-'));
    return new Proxy(real, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof v !== 'function' || key === 'close') return v;
        const fail = async () => { throw new FurError(tag, `${String(key)}: the link went down for the test`, {}); };
        // the lease's record is made here, and fails at its first request
        if (key === 'exclusive') return () => ({ create: fail, read: fail, replace: fail, remove: fail });
        return fail;
      },
    });
  }

  test('before any connection worked, a name that does not resolve ends the run at once: the resolver\'s answer will not change', async (t) => {
    let attempts = 0;
    const { spec: s } = await spec(t, async () => { attempts++; throw notFound(); });
    await assert.rejects(runResilient(s), (e) => isFurError(e, 'connect-failed') && /ENOTFOUND/.test((e as Error).message));
    assert.equal(attempts, 1);
  });

  test('before any connection worked, refusals are retried only for --connect-timeout, whatever --give-up-after says', async (t) => {
    let attempts = 0;
    const { spec: s, events } = await spec(t, async () => { attempts++; throw new FurError('connect-failed', 'cannot connect to lab@127.0.0.1:9: connect ECONNREFUSED', { code: 'ECONNREFUSED' }); },
      { connectTimeoutMs: 1500 });
    await assert.rejects(runResilient(s), (e) => isFurError(e, 'gave-up') && /gave up after \d+ s without a working destination \(--connect-timeout; last error: .*ECONNREFUSED\); nothing was sent/.test((e as Error).message));
    assert.ok(attempts > 1, `retried (${attempts} attempts)`);
    assert.equal(events.filter((e) => e.type === 'disconnected').length, attempts - 1);
  });

  test('before any connection worked, an attempt that never answers is abandoned at --connect-timeout', async (t) => {
    const { spec: s } = await spec(t, () => new Promise(() => {}), { connectTimeoutMs: 1500 });
    await assert.rejects(runResilient(s), (e) => isFurError(e, 'gave-up') && /no answer from the destination within 1\.5 s/.test((e as Error).message));
  });

  test('once a connection worked, a name that does not resolve is an outage: waited out for --give-up-after', async (t) => {
    let attempts = 0;
    const { spec: s } = await spec(t, async () => {
      if (++attempts === 1) return { dest: await breaking(t), path: 'run.h5' };
      throw notFound();
    }, { giveUpAfterMs: 1000, connectTimeoutMs: 100_000 });
    await assert.rejects(runResilient(s), (e) => isFurError(e, 'gave-up') && /\(--give-up-after; last error: .*ENOTFOUND.*\); local files not yet committed are kept/.test((e as Error).message));
    assert.ok(attempts > 2, `retried after the first connection (${attempts} attempts)`);
  });

  test('a destination that connects every time but fails before any commit (a full disk) is still down: the run gives up after --give-up-after', async (t) => {
    let attempts = 0;
    const { spec: s } = await spec(t, async () => { attempts++; return { dest: await breaking(t, 'remote-write-failed'), path: 'run.h5' }; }, { giveUpAfterMs: 1000 });
    await assert.rejects(runResilient(s), (e) => isFurError(e, 'gave-up') && /\(--give-up-after; last error: /.test((e as Error).message));
    assert.ok(attempts > 1, `${attempts} attempts`);
  });
});
