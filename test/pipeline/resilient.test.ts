/**
 * runResilient across a refused connection: a finished folder is listed while the first
 * connection is made, and again by an attempt that follows a failed one, so files that arrived
 * while the destination was unreachable are not left behind.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FurError } from '../../src/errors.js';
import { DEFAULTS } from '../../src/pipeline/options.js';
import { Progress, type RunEvent } from '../../src/pipeline/progress.js';
import { runResilient } from '../../src/pipeline/resilient.js';
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
});
