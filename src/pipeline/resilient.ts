/**
 * Keep a run going through network and server failures: on a connection error, reconnect with
 * exponential backoff and jitter, and resume from what the destination says is committed (the
 * destination is the journal). Give up only after `giveUpAfterMs` without a working connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FurError, isFurError } from '../errors.js';
import type { Destination } from '../transport/destination.js';
import { leaseTicket } from './lease.js';
import { listFinished, run, type RunSpec, type RunSummary } from './run.js';

/**
 * failures that a later attempt may not meet: the link, the server, a full disk being cleared; a
 * lease that could not be renewed in time (the next attempt takes it back, unless another run has)
 */
const TRANSIENT = new Set(['connection-lost', 'connect-failed', 'remote-write-failed', 'io-failed', 'destination-closed', 'file-closed', 'remote-failed', 'lease-expired']);

export function isTransient(e: unknown): boolean {
  return isFurError(e) && TRANSIENT.has(e.tag);
}

export interface ResilientSpec extends Omit<RunSpec, 'dest' | 'destPath'> {
  connect: () => Promise<{ dest: Destination; path: string }>;
  giveUpAfterMs: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export async function runResilient(spec: ResilientSpec): Promise<RunSummary> {
  const initial = spec.initialDelayMs ?? 500;
  const max = spec.maxDelayMs ?? 30_000;
  let attempt = 0;
  let downSince: number | undefined;
  // a finished folder is listed while the first connection is made; a later attempt lists it
  // again (files committed meanwhile may have been deleted)
  let listing = spec.watch ? undefined : listFinished(spec.sourceDir, spec.pattern, spec.options.read);
  listing?.catch(() => undefined); // its failure is reported by the run, after the connection's
  // one lease for every attempt: a reconnected run takes back its own
  const lease = spec.lease ?? leaseTicket();
  for (;;) {
    let dest: Destination | undefined;
    const listed = listing;
    listing = undefined;
    try {
      const c = await spec.connect();
      dest = c.dest;
      if (downSince !== undefined) spec.progress.event({ type: 'reconnected', afterSec: Number(((Date.now() - downSince) / 1000).toFixed(1)) });
      downSince = undefined;
      attempt = 0;
      const maxFrames = spec.maxFrames === undefined ? undefined : Math.max(0, spec.maxFrames - spec.progress.frames);
      return await run({ ...spec, dest, destPath: c.path, maxFrames, listing: listed, lease });
    } catch (e) {
      if (!isTransient(e) || spec.signal?.aborted) throw e;
      downSince ??= Date.now();
      const down = Date.now() - downSince;
      if (down >= spec.giveUpAfterMs) {
        throw new FurError('gave-up',
          `gave up after ${Math.round(down / 1000)} s without a working destination (last error: ${(e as Error).message}); local files not yet committed are kept — run the same command again to resume`,
          { cause: (e as FurError).tag }, { cause: e });
      }
      const delay = Math.min(max, initial * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt++;
      spec.progress.event({ type: 'disconnected', tag: (e as FurError).tag, message: (e as Error).message, retryInSec: Number((delay / 1000).toFixed(1)), attempt, downSec: Math.round(down / 1000) });
      try {
        await sleep(delay, undefined, { signal: spec.signal });
      } catch {
        throw new FurError('stopped-disconnected', `stopped while the destination was unreachable (${(e as Error).message}); local files not yet committed are kept`, {}, { cause: e });
      }
    } finally {
      await dest?.close().catch(() => undefined);
    }
  }
}
