/**
 * Keep a run going through network and server failures: on a connection error, reconnect with
 * exponential backoff and jitter, and resume from what the destination says is committed (the
 * destination is the journal). Give up only after `giveUpAfterMs` without a working connection.
 *
 * Until a first connection has worked, nothing says the destination is reachable at all: a
 * typo in the host or the port looks exactly like a server that is down. That phase has its own,
 * shorter limit (`connectTimeoutMs`), and answers that no wait can change end it at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FurError, isFurError, remoteFields, unreachable, type FurErrorTag } from '../errors.js';
import type { Destination } from '../transport/destination.js';
import { leaseTicket } from './lease.js';
import { folderOf, listFinished, run, type RunSpec, type RunSummary } from './run.js';

/**
 * Whether a later attempt may not meet this failure: the link, the server, a full disk being
 * cleared; a lease that could not be renewed in time (the next attempt takes it back, unless
 * another run has). Every tag is decided here (a new one does not compile until it is).
 */
export function isTransientTag(tag: FurErrorTag): boolean {
  switch (tag) {
    case 'connection-lost': case 'connect-failed': case 'remote-write-failed': case 'io-failed':
    case 'destination-closed': case 'file-closed': case 'remote-failed': case 'lease-expired':
      return true;
    // answers that asking again gets again: the user's input, a login, a key, a permission,
    // what is stored, or fur's own state
    case 'bad-option': case 'bad-setting': case 'bad-pattern': case 'bad-shape': case 'unknown-dtype':
    case 'bad-url': case 'bad-slice': case 'bad-identity': case 'missing-password': case 'method-unsupported':
    case 'raw-needs-layout': case 'needs-sources': case 'unsafe-name': case 'name-reused':
    case 'unreadable-dir': case 'unreadable-file': case 'empty-file': case 'empty-frame': case 'frame-mismatch':
    case 'raw-size': case 'npy-bad-header': case 'npy-fortran-order': case 'npy-size': case 'npy-truncated':
    case 'npy-unsupported-dtype': case 'tiff-bad-header': case 'tiff-decode': case 'tiff-mixed-pages':
    case 'tiff-truncated': case 'tiff-unsupported':
    case 'auth-failed': case 'ssh-not-found': case 'bad-ssh-config': case 'host-key-changed': case 'host-key-revoked': case 'unknown-host-key':
    case 'known-hosts-unreadable': case 'known-hosts-unwritable': case 'tls-certificate': case 'tls-unavailable':
    case 'wrong-region': case 'http-failed':
    case 'remote-refused': case 'not-found': case 'permission-denied': case 'not-a-directory': case 'wrong-type':
    case 'overwrite-refused': case 'rename-unsupported': case 'unsupported-operation': case 'ftp-refused':
    case 'ftp-unsupported': case 'read-only': case 'exists': case 'gave-up': case 'stopped-disconnected':
    case 'lease-held': case 'lease-busy': case 'lease-lost':
    case 'append-order': case 'not-readable': case 'too-many-parts': case 'upload-aborted': case 'upload-lost':
    case 'upload-mismatch': case 'bad-upload-record': case 'object-complete': case 'metadata-full':
    case 'hdf5-format': case 'hdf5-usage': case 'checksum-mismatch': case 'layout-mismatch': case 'not-a-fur-file':
    case 'not-a-file': case 'no-dataset': case 'no-hashes': case 'read-back-differs':
    case 'bad-config': case 'bad-key': case 'internal': case 'config-file': case 'bad-source': case 'serve-failed':
    case 'no-source': case 'bad-frame': case 'name-committed': case 'name-repeated': case 'capture-closed':
    case 'attrs-unsupported': case 'stream-message': case 'spool-damaged': case 'filter-unsupported':
      return false;
    default:
      return unreachable(tag);
  }
}

export function isTransient(e: unknown): boolean {
  return isFurError(e) && isTransientTag(e.tag);
}

/**
 * Before any connection has worked: the resolver said the name does not exist (NXDOMAIN). That is
 * an answer, not a silence — a typo, or a name only a VPN knows — and asking again within seconds
 * gets the same answer. A resolver that did not answer (EAI_AGAIN) is waited for like a refused
 * connection (a server restarting refuses for a few seconds). Once a connection has worked, the
 * same name failing to resolve is an outage of DNS or of the network, and is waited out.
 * A rejected login, a host key problem and a permission error are not transient at any time.
 */
function answeredForGood(e: unknown): boolean {
  return isFurError(e) && remoteFields(e).code === 'ENOTFOUND';
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

export interface ResilientSpec extends Omit<RunSpec, 'dest' | 'destPath'> {
  /** one connection attempt (bounded by the transport's own connect timeout) */
  connect: () => Promise<{ dest: Destination; path: string }>;
  giveUpAfterMs: number;
  /** how long attempts may go on before a first connection has worked (default 30 s; giveUpAfterMs, if shorter, ends retries sooner) */
  connectTimeoutMs?: number;
  /** the destination as the user typed it, for messages */
  display?: string;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export async function runResilient(spec: ResilientSpec): Promise<RunSummary> {
  const initial = spec.initialDelayMs ?? 500;
  const max = spec.maxDelayMs ?? 30_000;
  const connectTimeoutMs = spec.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let attempt = 0;
  let connected = false;
  // before the first connection, the clock runs from the start
  let downSince: number | undefined = Date.now();
  // a finished folder is listed while the first connection is made; a later attempt lists it
  // again (files committed meanwhile may have been deleted)
  let listing = spec.watch || spec.frames ? undefined : listFinished(folderOf(spec).dir, folderOf(spec).pattern, spec.options.read, spec.notFrames);
  listing?.catch(() => undefined); // its failure is reported by the run, after the connection's
  // one lease for every attempt: a reconnected run takes back its own
  const lease = spec.lease ?? leaseTicket();
  for (;;) {
    let dest: Destination | undefined;
    const listed = listing;
    listing = undefined;
    // files committed before this attempt: a destination that connects but then fails before it
    // commits anything (a full disk) is still down — the clock goes on across such attempts
    const committedBefore = spec.progress.files;
    try {
      const c = connected ? await spec.connect() : await firstConnection(spec, downSince!, connectTimeoutMs);
      dest = c.dest;
      if (attempt > 0) spec.progress.event({ type: 'reconnected', afterSec: Number(((Date.now() - downSince!) / 1000).toFixed(1)) });
      if (!connected) downSince = undefined; // from now on, the clock starts at a failure
      connected = true;
      const maxFrames = spec.maxFrames === undefined ? undefined : Math.max(0, spec.maxFrames - spec.progress.frames);
      return await run({ ...spec, dest, destPath: c.path, maxFrames, listing: listed, lease });
    } catch (e) {
      if (!isTransient(e) || spec.signal?.aborted) throw e;
      if (!connected && answeredForGood(e)) throw e;
      if (spec.progress.files > committedBefore) {
        // it worked for a while: this is a new outage
        downSince = undefined;
        attempt = 0;
      }
      downSince ??= Date.now();
      const down = Date.now() - downSince;
      const delay = Math.min(max, initial * 2 ** attempt) * (0.5 + Math.random() / 2);
      // no attempt starts after the limit: the run ends when the next one would (so a limit
      // shorter than the first backoff means no retry at all)
      const limit = connected ? spec.giveUpAfterMs : Math.min(connectTimeoutMs, spec.giveUpAfterMs);
      if (down + delay > limit) {
        throw gaveUp(e as FurError, down, connected || spec.giveUpAfterMs < connectTimeoutMs ? '--give-up-after' : '--connect-timeout', connected);
      }
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

/**
 * One attempt at the first connection, ended `limitMs` after `since` whatever the transport does
 * (a host that drops packets answers nothing, and DNS may take its own time): the attempt is then
 * abandoned — closed, should it still succeed — and reported as a timeout.
 */
async function firstConnection(spec: ResilientSpec, since: number, limitMs: number): Promise<{ dest: Destination; path: string }> {
  const left = Math.max(0, since + limitMs - Date.now());
  const attempt = spec.connect();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      attempt.then((c) => c.dest.close(), () => undefined).catch(() => undefined);
      const where = spec.display ?? 'the destination';
      reject(new FurError('connect-failed', `no answer from ${where} within ${seconds(limitMs)} s; check the host and port, and any firewall in between`, { url: spec.display, code: 'ETIMEDOUT' }));
    }, left);
  });
  try {
    return await Promise.race([attempt, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function gaveUp(e: FurError, downMs: number, option: string, connected: boolean): FurError {
  const after = connected ? 'local files not yet committed are kept — run the same command again to resume' : 'nothing was sent and no local file deleted';
  return new FurError('gave-up',
    `gave up after ${Math.round(downMs / 1000)} s without a working destination (${option}; last error: ${e.message}); ${after}`,
    { cause: e.tag, option }, { cause: e });
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
