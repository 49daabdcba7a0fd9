/**
 * The settings a program gives fur, and how they become the pipeline's. Each option is the
 * command's flag of the same name in camelCase (`batchSeconds` is --batch-seconds), in the same
 * units, and a bad value is reported naming that flag.
 */
import { FurError } from '../errors.js';
import { DEFAULTS, validate, type PipelineOptions } from '../pipeline/options.js';
import type { RunEvent } from '../pipeline/progress.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../pipeline/resilient.js';
import { parseDtype, type Dtype } from '../source/frame.js';
import type { ReadOptions } from '../source/readers/index.js';
import type { OpenOptions } from '../transport/open.js';

/** What fur reports while it stores frames: the events `fur … --json` prints, one per line. */
export type ProgressEvent = RunEvent;

/** How to reach and trust the destination. */
export interface ConnectionOptions {
  /** SFTP: OpenSSH's ssh program, fur's own SSH client, or OpenSSH where an ssh program exists (default auto) */
  ssh?: 'openssh' | 'builtin' | 'auto';
  /** SFTP over OpenSSH: an ssh_config file to use instead of ~/.ssh/config */
  sshConfig?: string;
  /** SSH private key file (SFTP) */
  identity?: string;
  /** name of an environment variable holding the passphrase of an encrypted identity (builtin SSH) */
  passphraseEnv?: string;
  /** name of an environment variable holding the SSH or FTP password */
  passwordEnv?: string;
  /** known_hosts file (default ~/.ssh/known_hosts) */
  knownHosts?: string;
  /** trust and record the key of a server known_hosts does not list yet (a changed key is always refused) */
  acceptNewHostKey?: boolean;
  /** FTPS, S3: also trust these certificates (PEM file) */
  caFile?: string;
  /** FTPS: TLS from the first byte (port 990) */
  implicitTls?: boolean;
  /** S3: an S3-compatible service's URL */
  endpoint?: string;
  region?: string;
  profile?: string;
  /** SFTP: SSH connections (default: as many as the link needs) */
  connections?: number;
  /** SFTP: channels per connection (default: as many as the link needs, up to 4) */
  channels?: number;
  /** seconds to give a connection, and all attempts until one has worked (default 30) */
  connectTimeout?: number;
}

/** How frames are stored, and how long fur keeps trying when the destination fails. */
export interface StoreOptions extends ConnectionOptions {
  /** append: one HDF5 file; batches: one HDF5 file per batch; files: each file as it is (folders only) */
  method?: 'append' | 'batches' | 'files';
  /** frames per batch: the unit of commit (default 100) */
  batch?: number;
  /** seconds after which a partial batch is committed (default 5) */
  batchSeconds?: number;
  /** frames per HDF5 chunk (default: 1-8 MiB chunks) */
  chunkFrames?: number;
  /** deflate level 1-9 for every chunk (default: none) */
  compression?: number;
  /** byte-shuffle before compressing */
  shuffle?: boolean;
  /** Fletcher-32 on every chunk (default: on for append) */
  checksum?: boolean;
  /** HDF5 path of the frames dataset (default /data) */
  dataset?: string;
  /** seconds to keep reconnecting before giving up (default 600) */
  giveUpAfter?: number;
  /** stop: what is queued is committed, then the run ends */
  signal?: AbortSignal;
  /** every progress event, as `--json` prints them */
  onProgress?: (event: ProgressEvent) => void;
}

/** A folder of frame files (upload, watch, verify). */
export interface FolderOptions extends StoreOptions {
  /** which files are frames (glob on names; default *) */
  pattern?: string;
  /** element type and frame shape of raw files */
  dtype?: Dtype;
  shape?: number[];
  /** raw | npy | tiff | bytes (default: by extension) */
  format?: ReadOptions['format'];
  /** delete each file once its frames are committed */
  deleteSource?: boolean;
  /**
   * with deleteSource, where the server cannot make a commit durable (no fsync@openssh.com, FTP):
   * delete without reading the frames back first
   */
  deleteUnsynced?: boolean;
  /** a file that cannot be used: keep it and go on (skip, default) or end the run (stop) */
  onMismatch?: 'skip' | 'stop';
  /** files in flight for the files method */
  parallel?: number;
  /** take the destination's lease even though another fur run seems to hold it (only when that run is gone) */
  takeOver?: boolean;
  /** seconds after its last renewal the lease on the destination expires (default 60) */
  leaseTtl?: number;
  /** a file of this name is never a frame (in watch: it ends the capture) */
  stopFile?: string;
  /** companion marker suffix (e.g. .done): markers are never frames */
  marker?: string;
}

export interface WatchOptions extends FolderOptions {
  /** stop after this many frames */
  count?: number;
  /** seconds without a new file after which the watch ends */
  idle?: number;
  /** seconds a file must stay unchanged to be complete (default 2) */
  quietPeriod?: number;
  /** how a file is known complete */
  completion?: 'quiet' | 'marker' | 'rename';
}

/** What a run did. */
export interface Summary {
  /** files (or frames pushed: units named once each) committed */
  files: number;
  frames: number;
  /** frame bytes committed */
  bytes: number;
  seconds: number;
  /** finished, count, stop-file, idle, stopped */
  endReason: string;
  /** files kept unused, and why (a capture of a folder; empty otherwise) */
  kept: { file: string; tag: string; message: string }[];
}

export function openOptionsOf(o: ConnectionOptions, warn?: (message: string) => void): OpenOptions {
  return {
    ssh: o.ssh ?? 'auto',
    sshConfig: o.sshConfig,
    identity: o.identity,
    passphraseEnv: o.passphraseEnv,
    passwordEnv: o.passwordEnv,
    knownHosts: o.knownHosts,
    acceptNewHostKey: o.acceptNewHostKey ?? false,
    createRoot: true,
    endpoint: o.endpoint,
    region: o.region,
    profile: o.profile,
    caFile: o.caFile,
    implicitTls: o.implicitTls,
    connections: count(o.connections, '--connections'),
    channels: count(o.channels, '--channels'),
    connectTimeoutMs: o.connectTimeout === undefined ? undefined : seconds(o.connectTimeout, '--connect-timeout') * 1000,
    warn,
  };
}

/** an expert's fixed number (1-64), or undefined for automatic */
function count(n: number | undefined, setting: string): number | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new FurError('bad-option', `${setting} ${JSON.stringify(n)}: must be a whole number from 1 to 64`, { setting, value: n });
  return n;
}

/** The longest a timer can wait (Node's setTimeout takes at most 2^31 - 1 ms; longer fires at once). */
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * A duration in seconds, as given for `setting`. Zero, negative and non-numbers are refused: a
 * zero timeout or period means nothing a person would ask for, and would make fur give up, or
 * take a file, at once.
 */
export function seconds(n: number, setting: string, typed: unknown = n): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > MAX_SECONDS) {
    throw new FurError('bad-option', `${setting} '${typed}': must be a number of seconds greater than 0 (at most ${MAX_SECONDS})`, { setting, value: typed });
  }
  return n;
}

export function giveUpAfterMs(o: StoreOptions): number {
  return o.giveUpAfter === undefined ? 600_000 : seconds(o.giveUpAfter, '--give-up-after') * 1000;
}

export function connectTimeoutMs(o: ConnectionOptions): number {
  return o.connectTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT_MS : seconds(o.connectTimeout, '--connect-timeout') * 1000;
}

/** The pipeline's settings from a program's, checked. */
export function pipelineOf(o: FolderOptions, read: ReadOptions = readOf(o)): PipelineOptions {
  return validate({
    ...DEFAULTS,
    method: o.method ?? DEFAULTS.method,
    batchFrames: o.batch ?? DEFAULTS.batchFrames,
    batchSeconds: o.batchSeconds === undefined ? DEFAULTS.batchSeconds : seconds(o.batchSeconds, '--batch-seconds'),
    chunkFrames: o.chunkFrames,
    gzipLevel: o.compression,
    shuffle: o.shuffle ?? false,
    checksum: o.checksum,
    dataset: o.dataset ?? DEFAULTS.dataset,
    deleteSource: o.deleteSource ?? false,
    deleteUnsynced: o.deleteUnsynced ?? false,
    onMismatch: o.onMismatch ?? 'skip',
    read,
    parallelFiles: o.parallel,
  });
}

export function readOf(o: Pick<FolderOptions, 'dtype' | 'shape' | 'format'>): ReadOptions {
  const r: ReadOptions = {};
  if (o.dtype) r.dtype = parseDtype(o.dtype, '--dtype');
  if (o.shape) r.shape = o.shape;
  if (o.format) {
    if (!['raw', 'npy', 'tiff', 'bytes'].includes(o.format)) throw new FurError('bad-option', `--format '${o.format}': use raw, npy, tiff or bytes`, { setting: '--format' });
    r.format = o.format;
  }
  if (r.dtype === 'bytes') { r.format = 'bytes'; delete r.dtype; }
  return r;
}
