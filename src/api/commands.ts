/**
 * The commands as functions: `upload` a finished folder, `watch` a folder while the instrument
 * writes into it, `verify` what a destination holds. The `fur` command calls these.
 */
import { FurError } from '../errors.js';
import { checkMethod, connectUrl } from '../pipeline/connect.js';
import { leaseTicket } from '../pipeline/lease.js';
import { Progress } from '../pipeline/progress.js';
import { compileGlob } from '../source/sequence.js';
import { runResilient } from '../pipeline/resilient.js';
import type { RunSummary } from '../pipeline/run.js';
import type { VerifyReport } from '../pipeline/verify.js';
import { DEFAULT_QUIET_MS, type WatchOptions as FolderWatchOptions } from '../source/watch.js';
import { parseDestinationUrl } from '../transport/url.js';
import {
  connectTimeoutMs, giveUpAfterMs, openOptionsOf, pipelineOf, readOf, seconds,
  type ConnectionOptions, type FolderOptions, type Summary, type WatchOptions,
} from './options.js';

/** Store the frame files of a finished folder at `destination` (a URL: sftp://, ftps://, s3://, file://). */
export function upload(folder: string, destination: string, options: FolderOptions = {}): Promise<Summary> {
  return runFolder(folder, destination, options, undefined);
}

/** Store frame files as they are completed in `folder`, until the watch ends (count, stop file, idle or signal). */
export function watch(folder: string, destination: string, options: WatchOptions = {}): Promise<Summary> {
  return runFolder(folder, destination, options, watchTiming(options));
}

/** The watch's timing, checked before anything connects. */
function watchTiming(o: WatchOptions): FolderWatchOptions {
  const quietMs = o.quietPeriod === undefined ? undefined : seconds(o.quietPeriod, '--quiet-period') * 1000;
  const idleMs = o.idle === undefined ? undefined : seconds(o.idle, '--idle') * 1000;
  const completion = o.completion ?? 'quiet';
  if (!['quiet', 'marker', 'rename'].includes(completion)) throw new FurError('bad-option', `--completion '${completion}': use quiet, marker or rename`, { setting: '--completion' });
  if (completion === 'quiet' && idleMs !== undefined && idleMs <= (quietMs ?? DEFAULT_QUIET_MS)) {
    throw new FurError('bad-option', `--idle ${o.idle} must be longer than --quiet-period (${(quietMs ?? DEFAULT_QUIET_MS) / 1000} s), or files would be left behind as incomplete`, { setting: '--idle' });
  }
  return { completion, quietMs, idleMs, stopFile: o.stopFile, markerSuffix: o.marker };
}

async function runFolder(folder: string, destination: string, o: WatchOptions, watching: FolderWatchOptions | undefined): Promise<Summary> {
  // every setting is checked before anything connects: a typo costs no connection, and no wait
  const options = pipelineOf(o);
  checkMethod(destination, options.method);
  if (o.count !== undefined && (!Number.isInteger(o.count) || o.count < 0)) throw new FurError('bad-option', `--count ${o.count}: must be a whole number ≥ 0`, { setting: '--count' });
  compileGlob(o.pattern ?? '*', '--pattern'); // refused as typed, before anything connects
  const lease = leaseTicket({ takeOver: o.takeOver ?? false, ttlMs: o.leaseTtl === undefined ? undefined : seconds(o.leaseTtl, '--lease-ttl') * 1000 });
  const progress = new Progress(o.onProgress ?? (() => undefined));
  const open = openOptionsOf(o, (message) => progress.event({ type: 'warning', tag: 'destination', message }));
  const summary = await runResilient({
    connect: () => connectUrl(destination, options.method, open),
    giveUpAfterMs: giveUpAfterMs(o),
    connectTimeoutMs: connectTimeoutMs(o),
    display: displayOf(destination, o),
    sourceDir: folder,
    pattern: o.pattern ?? '*',
    watch: watching,
    notFrames: { stopFile: o.stopFile, markerSuffix: o.marker },
    maxFrames: o.count,
    options, progress, signal: o.signal, lease,
  });
  return summaryOf(summary);
}

/** The destination as the user typed it; an S3 destination is reached at its endpoint: both. */
export function displayOf(destination: string, o: ConnectionOptions): string {
  return `${parseDestinationUrl(destination).display}${o.endpoint ? ` (${o.endpoint})` : ''}`;
}

export function summaryOf(s: RunSummary): Summary {
  return {
    files: s.files, frames: s.frames, bytes: s.bytes, seconds: s.seconds, endReason: s.endReason,
    kept: s.rejected.map((r) => ({ file: r.file.path, tag: r.error.tag, message: r.error.message })),
  };
}

export type { VerifyReport };

/**
 * Compare what `destination` holds with the frame files of `folder`, frame by frame; with
 * `folder` undefined, with the SHA-256 recorded for each frame when it was stored.
 */
export async function verify(folder: string | undefined, destination: string, options: FolderOptions = {}): Promise<VerifyReport> {
  const method = options.method ?? 'append';
  const dataset = options.dataset ?? '/data';
  const read = readOf(options);
  if (folder !== undefined) compileGlob(options.pattern ?? '*', '--pattern'); // refused as typed, before anything connects
  const { dest, path } = await connectUrl(destination, method, openOptionsOf(options));
  try {
    // loaded only for this command (start-up of the others does not pay for it)
    const { verify: compare, verifySelf } = await import('../pipeline/verify.js');
    return folder === undefined
      ? await verifySelf({ dest, destPath: path, method, dataset })
      : await compare({ sourceDir: folder, pattern: options.pattern ?? '*', notFrames: { stopFile: options.stopFile, markerSuffix: options.marker }, dest, destPath: path, method, dataset, read });
  } finally {
    await dest.close();
  }
}
