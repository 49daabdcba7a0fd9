/**
 * The `fur` command line. Exit codes: 0 every selected frame committed (and verified, for
 * verify); 1 the run failed; 2 bad usage; 3 the run ended but some files were kept unused or
 * some frames did not verify.
 */
import { Command, CommanderError, Option } from 'commander';
import { FurError, isFurError } from '../errors.js';
import { parseAttr, readMetadataFile } from '../pipeline/metadata.js';
import { DEFAULTS, parseCompression, validate, type PipelineOptions } from '../pipeline/options.js';
import { DEFAULT_LEASE_TTL_MS, leaseTicket } from '../pipeline/lease.js';
import { Progress } from '../pipeline/progress.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, runResilient } from '../pipeline/resilient.js';
import { DEFAULT_QUIET_MS } from '../source/watch.js';
import { parseDtype, parseShape } from '../source/frame.js';
import { compileGlob } from '../source/sequence.js';
import type { ReadOptions } from '../source/readers/index.js';
import { checkConnection, checkMethod, connect, connectionOf, type ConnectionFlags } from './connect.js';
import { dirname } from 'node:path';
import { parseSlice } from '../index/slice.js';
import { duration } from './duration.js';
import { exitCodeOf } from './exit.js';
import { parseDestinationUrl } from '../transport/url.js';
import { writeFile } from 'node:fs/promises';
import { H5File, dtypeName } from '../hdf5/index.js';
import { buildReferences } from '../index/kerchunk.js';
import { fileUrl, putSidecar, sidecarPath } from '../index/sidecar.js';
import { get, type RemoteBytes } from '../index/get.js';
import { destinationBytes, httpBytes, isHttp } from '../index/remote.js';
import { encodeNpy } from '../source/writers/npy.js';
import type { NumericDtype } from '../source/frame.js';
import type { Destination } from '../transport/destination.js';
import { FUR_VERSION } from '../version.js';
import { printable } from './render.js';
import { plural } from './status-line.js';
import { applyConfig, configurable, loadConfig, masked, type Origin } from './config.js';
import { addReporting, addRunControls, controls, runRenderer, type ControlFlags } from './run-controls.js';
import { stat } from 'node:fs/promises';
import { Egress } from '../transport/egress.js';
import { InstrumentMeter } from '../source/instrument.js';
import type { WatchOptions } from '../source/watch.js';
import { pipelineOf, type StoreOptions } from '../api/options.js';
import { stream, type StreamOptions } from '../stream/receive.js';

interface CommonFlags extends ConnectionFlags {
  method: string;
  pattern: string;
  dtype?: string;
  shape?: string;
  format?: string;
  batch: string;
  batchSeconds: string;
  chunkFrames?: string;
  compression?: string;
  shuffle?: boolean;
  checksum?: boolean;
  dataset: string;
  layout: string;
  attr: string[];
  metadata?: string;
  deleteSource?: boolean;
  deleteUnsynced?: boolean;
  onMismatch: string;
  parallel?: string;
  giveUpAfter: string;
  takeOver?: boolean;
  leaseTtl: string;
  json?: boolean;
  serve?: string;
  stopFile?: string;
  marker?: string;
}

interface StreamFlags extends ConnectionFlags, Omit<ControlFlags, 'bwlimit' | 'dryRun'> {
  method: string;
  batch: string;
  batchSeconds: string;
  chunkFrames?: string;
  compression?: string;
  shuffle?: boolean;
  checksum?: boolean;
  dataset: string;
  giveUpAfter: string;
  json?: boolean;
  format?: string;
  series?: string;
  forever?: boolean;
  maxBuffered?: string;
  spool?: string;
  spoolMax?: string;
}

interface WatchFlags extends CommonFlags, ControlFlags {
  count?: string;
  idle?: string;
  quietPeriod?: string;
  completion: string;
}

function int(text: string, setting: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || text.trim() === '') throw new FurError('bad-option', `${setting} '${text}': not a number`, { setting, value: text });
  return n;
}

function readOptions(f: CommonFlags): ReadOptions {
  const r: ReadOptions = {};
  if (f.dtype) r.dtype = parseDtype(f.dtype, '--dtype');
  if (f.shape) r.shape = parseShape(f.shape, '--shape');
  if (f.format) {
    if (!['raw', 'npy', 'tiff', 'bytes'].includes(f.format)) throw new FurError('bad-option', `--format '${f.format}': use raw, npy, tiff or bytes`, { setting: '--format' });
    r.format = f.format as ReadOptions['format'];
  }
  if (r.dtype === 'bytes') { r.format = 'bytes'; delete r.dtype; }
  return r;
}

async function pipelineOptions(f: CommonFlags): Promise<PipelineOptions> {
  // the file first: an --attr of the same name replaces its value
  const metadata = [...(f.metadata === undefined ? [] : await readMetadataFile(f.metadata)), ...f.attr.map(parseAttr)];
  return {
    ...DEFAULTS,
    method: f.method as PipelineOptions['method'],
    batchFrames: int(f.batch, '--batch'),
    batchSeconds: duration(f.batchSeconds, '--batch-seconds'),
    chunkFrames: f.chunkFrames === undefined ? undefined : int(f.chunkFrames, '--chunk-frames'),
    gzipLevel: f.compression === undefined ? undefined : parseCompression(f.compression),
    shuffle: f.shuffle ?? false,
    checksum: f.checksum,
    dataset: f.dataset,
    layout: f.layout as PipelineOptions['layout'],
    metadata,
    deleteSource: f.deleteSource ?? false,
    deleteUnsynced: f.deleteUnsynced ?? false,
    onMismatch: f.onMismatch === 'stop' ? 'stop' : 'skip',
    read: readOptions(f),
    parallelFiles: f.parallel === undefined ? undefined : int(f.parallel, '--parallel'),
  };
}

/** how to reach and trust the destination: every command that connects takes these */
function addConnection(c: Command): Command {
  return c
    .option('--config <file>', 'settings from a TOML file (keys named like the long options; default $FUR_CONFIG); options given here win')
    .addOption(new Option('--ssh <which>', 'SFTP: the system\'s OpenSSH client (honours ~/.ssh/config: aliases, ProxyJump, certificates, agent) or ssh2 inside fur (default: openssh where an ssh program exists and no --password-env/--passphrase-env is given)').choices(['openssh', 'builtin']))
    .option('--ssh-config <file>', 'SFTP with OpenSSH: use this ssh_config file (ssh -F) instead of ~/.ssh/config')
    .option('--identity <keyfile>', 'SSH private key')
    .option('--passphrase-env <VAR>', 'SFTP, --ssh builtin: environment variable holding the passphrase of an encrypted --identity key')
    .option('--password-env <VAR>', 'environment variable holding the SSH or FTP password (SSH: --ssh builtin)')
    .option('--known-hosts <file>', 'known_hosts file (default ~/.ssh/known_hosts)')
    .option('--accept-new-host-key', 'trust and record the key of a server known_hosts does not list yet (a changed key is always refused)')
    .option('--ca-file <pem>', 'FTPS, S3: also trust these certificates (a private CA, or the server\'s own self-signed certificate); names are still checked')
    .option('--implicit-tls', 'FTPS: TLS from the first byte (legacy implicit FTPS, port 990 unless the URL names one) instead of AUTH TLS')
    .option('--endpoint <url>', 'S3: an S3-compatible service, e.g. https://minio.lab:9000 (default AWS, or $AWS_ENDPOINT_URL_S3)')
    .option('--region <region>', 'S3: the bucket\'s region (default $AWS_REGION, the profile\'s, or us-east-1)')
    .option('--profile <name>', 'S3: a profile of ~/.aws/config and ~/.aws/credentials (default $AWS_PROFILE)')
    .option('--connections <n>', 'SFTP: SSH connections to use (default: as many as the link needs; expert setting)')
    .option('--channels <n>', 'SFTP: channels on each connection (default: as many as the link needs, up to 4; expert setting)')
    .option('--connect-timeout <seconds>', 'give up connecting after this long: one attempt, and all attempts until a first connection has worked (a mistyped host or port fails fast)', String(DEFAULT_CONNECT_TIMEOUT_MS / 1000));
}

/** how frames are stored: every command that stores frames takes these */
function addStore(c: Command, methods: string[]): Command {
  return addConnection(c)
    .addOption(new Option('--method <method>', methods.join(' | ')).choices(methods).default('append'))
    .option('--batch <n>', 'frames per batch (the unit of commit and cleanup)', String(DEFAULTS.batchFrames))
    .option('--batch-seconds <s>', 'commit a partial batch after this long', String(DEFAULTS.batchSeconds))
    .option('--chunk-frames <n>', 'frames per HDF5 chunk (default: 1-8 MiB chunks)')
    .option('--compression <gzip[:level]>', 'deflate each chunk (gzip = level 4)')
    .option('--shuffle', 'byte-shuffle before compressing')
    .option('--checksum', 'Fletcher-32 checksum on every chunk of numeric frames (default for --method append); bytes frames (JPEG, …) are covered by their SHA-256 in frame_sha256, which fur verify checks')
    .option('--no-checksum', 'no Fletcher-32 checksum, also for --method append')
    .option('--dataset <path>', 'HDF5 dataset path of the frames (nexus layout: the link to them)', DEFAULTS.dataset)
    .option('--give-up-after <seconds>', 'keep reconnecting this long before exiting with an error', '600')
    .option('--json', 'print one JSON status event per line instead of a status line');
}

/** a folder of frame files to store (upload, watch) */
function addCommon(c: Command): Command {
  return addRunControls(addStore(c, ['append', 'batches', 'files']))
    .option('--pattern <glob>', 'which files in SRC are frames (matched on names; ordered by the number in the name)', '*')
    .option('--dtype <type>', 'element type of raw files (uint8, int16, float32, …; bytes = opaque files)')
    .option('--shape <dims>', 'frame shape of raw files, e.g. 512x512 or 480,640,3')
    .option('--format <fmt>', 'raw | npy | tiff | bytes (default: by file extension)')
    .addOption(new Option('--layout <layout>', 'a new file\'s layout: nexus (/entry/data/data, NXdata, dimension scales; /data links to the frames) or flat (/data and the per-frame datasets at the root); a continued file keeps its own').choices(['nexus', 'flat']).default(DEFAULTS.layout))
    .option('--attr <NAME=VALUE>', 'an attribute of the capture, under /entry (flat: the root); repeatable. Numbers are stored as numbers; \'NAME=VALUE UNIT\' adds NAME_units; NAME may be a path (sample/name, /entry/instrument/detector/description)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--metadata <file.json>', 'attributes from a JSON object: nested objects become groups under /entry (or where a key starting with / says), {"value": V, "units": U} a value with its unit')
    .option('--delete-source', 'delete each local file once its batch is committed remotely (where the server cannot make a commit durable, once its frames read back intact)')
    .option('--delete-unsynced', 'with --delete-source, where the server cannot make a commit durable (no fsync@openssh.com, FTP): delete without reading frames back first; a crash of the server may then lose frames whose sources are gone')
    .addOption(new Option('--on-mismatch <what>', 'a file that cannot be used (unreadable, truncated, or frames unlike the first file\'s): skip it — keep it in place, report it, go on, exit 3 — or stop the run').choices(['stop', 'skip']).default('skip'))
    .option('--parallel <n>', 'files in flight for --method files (default: as many as keep the link busy, up to 256)')
    .option('--take-over', 'take the destination\'s lease even though another fur run seems to hold it (only when that run is gone)')
    .option('--lease-ttl <seconds>', 'the lease on the destination expires this long after its last renewal (renewed every third of it)', String(DEFAULT_LEASE_TTL_MS / 1000))
    .option('--serve <[host:]port>', 'a live web page of the capture (frames, rates, backlog, errors) at http://127.0.0.1:PORT; another host needs the token in the printed URL');
}

function checkDataset(path: string): void {
  if (!/^(\/[^/\0]+)+$/.test(path)) throw new FurError('bad-option', `--dataset ${JSON.stringify(path)}: must be an absolute HDF5 path like /data or /entry/data`, { setting: '--dataset', value: path });
}

/** An output file's folder must be there: found out after the work, it would be lost. */
async function checkOutput(path: string): Promise<void> {
  const dir = dirname(path);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new FurError('bad-option', `--output ${path}: no folder ${dir} to write it in`, { setting: '--output', value: path });
}

/** The source folder must be there: a typo must not become a capture that waits forever. */
async function checkSource(src: string): Promise<void> {
  const st = await stat(src).catch(() => undefined);
  if (!st) throw new FurError('bad-source', `${src}: no such folder; give the folder the instrument writes into`, { path: src });
  if (!st.isDirectory()) throw new FurError('bad-source', `${src}: not a folder; give the folder that holds the files`, { path: src });
}

/**
 * The files of SRC that are not frames, for every command that reads SRC: the same flags then
 * say the same thing to watch, to an upload of what a watch left, and to verify.
 */
function addNotFrames(c: Command, stopFile: string): Command {
  return c
    .option('--stop-file <name>', stopFile)
    .option('--marker <suffix>', 'companion marker suffix, e.g. .done (markers are never frames)');
}

/** Ctrl-C or SIGTERM finish what is queued; a second one aborts at once. `release` when the run ends. */
function interruptible(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    process.stderr.write('\nfur: finishing what is queued (press Ctrl-C again to abort)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

async function doRun(src: string, destUrl: string, f: WatchFlags, watch: boolean): Promise<number> {
  // every setting is checked before anything connects or is written: a typo costs no connection, and no wait
  checkConnection(f);
  const options = validate(await pipelineOptions(f));
  checkMethod(destUrl, options.method);
  compileGlob(f.pattern, '--pattern');
  const ctl = controls(f);
  const giveUpAfterMs = duration(f.giveUpAfter, '--give-up-after') * 1000;
  const connectTimeoutMs = duration(f.connectTimeout ?? String(DEFAULT_CONNECT_TIMEOUT_MS / 1000), '--connect-timeout') * 1000;
  checkNotFrames(f);
  const watchOptions = watch ? watchSettings(f) : undefined;
  const lease = leaseTicket({ takeOver: f.takeOver ?? false, ttlMs: duration(f.leaseTtl, '--lease-ttl') * 1000 });
  const maxFrames = f.count === undefined ? undefined : count(f.count, '--count');
  const serveAt = f.serve === undefined ? undefined : (await import('../serve/address.js')).parseServe(f.serve);
  await checkSource(src);
  if (f.dryRun) return (await import('./dry-run.js')).dryRun({ src, destUrl, pattern: f.pattern, options, flags: f, watch, json: f.json ?? false });
  const live = serveAt && await (await import('../serve/cli.js')).startLiveView(serveAt, watch ? 'watch' : 'upload', destUrl, options, f);
  const egress = new Egress(ctl.schedule);
  const out = runRenderer(f, ctl);
  const meter = watch ? new InstrumentMeter(src, f.pattern, (name) => name === f.stopFile) : undefined;
  const progress = new Progress(live ? live.tee(out.emit) : out.emit, {
    watch, deleteSource: options.deleteSource, maxFrames,
    sent: () => egress.sent, limit: () => egress.limit(),
    local: meter && ((isDone) => meter.sample(isDone)),
  });
  const warn = (message: string) => progress.event({ type: 'warning', tag: 'destination', message });
  const interrupt = interruptible();
  try {
    compileGlob(f.pattern, '--pattern'); // refused as typed, before anything connects
    const summary = await runResilient({
      connect: () => connect(destUrl, options.method, { ...f, warn, egress }),
      giveUpAfterMs,
      connectTimeoutMs,
      // an S3 destination is reached at its endpoint: name both
      display: `${parseDestinationUrl(destUrl).display}${f.endpoint ? ` (${f.endpoint})` : ''}`,
      sourceDir: src,
      pattern: f.pattern,
      watch: watchOptions,
      notFrames: { stopFile: f.stopFile, markerSuffix: f.marker },
      maxFrames,
      options, progress, signal: interrupt.signal, view: live?.tap,
      lease,
    });
    await live?.close();
    return summary.rejected.length ? 3 : 0;
  } catch (e) {
    await live?.close(e);
    throw e;
  } finally {
    out.end();
    interrupt.release();
  }
}

/** a number > 0 */
function positive(text: string, setting: string): number {
  const n = int(text, setting);
  if (!(n > 0)) throw new FurError('bad-option', `${setting} '${text}': must be > 0`, { setting, value: text });
  return n;
}

/** a whole number ≥ 1 */
function count(text: string, setting: string): number {
  const n = int(text, setting);
  if (!Number.isInteger(n) || n < 1) throw new FurError('bad-option', `${setting} '${text}': must be a whole number ≥ 1`, { setting, value: text });
  return n;
}

/** --stop-file and --marker: names of files inside SRC (upload, watch and verify read them alike) */
function checkNotFrames(f: { stopFile?: string; marker?: string }): void {
  for (const [setting, name] of [['--stop-file', f.stopFile], ['--marker', f.marker]] as const) {
    if (name !== undefined && (name === '' || /[/\\]/.test(name))) {
      throw new FurError('bad-option', `${setting} ${JSON.stringify(name)}: a file name inside SRC, without a folder`, { setting, value: name });
    }
  }
}

/** watch's folder settings, checked as the user typed them */
function watchSettings(f: WatchFlags): WatchOptions {
  const quietMs = f.quietPeriod === undefined ? undefined : duration(f.quietPeriod, '--quiet-period') * 1000;
  const idleMs = f.idle === undefined ? undefined : duration(f.idle, '--idle') * 1000;
  if (idleMs !== undefined && f.completion === 'quiet' && idleMs <= (quietMs ?? DEFAULT_QUIET_MS)) {
    throw new FurError('bad-option', `--idle ${f.idle} must be longer than --quiet-period (${(quietMs ?? DEFAULT_QUIET_MS) / 1000} s), or files still being written would be left behind`, { setting: '--idle', value: f.idle });
  }
  return { completion: f.completion as 'quiet' | 'marker' | 'rename', quietMs, idleMs, stopFile: f.stopFile, markerSuffix: f.marker };
}

/** The stream's flags as the library takes them. */
function streamOptions(f: StreamFlags): StreamOptions {
  const store: StoreOptions = {
    ...connectionOf(f),
    batch: int(f.batch, '--batch'),
    batchSeconds: duration(f.batchSeconds, '--batch-seconds'),
    chunkFrames: f.chunkFrames === undefined ? undefined : int(f.chunkFrames, '--chunk-frames'),
    compression: f.compression === undefined ? undefined : parseCompression(f.compression),
    shuffle: f.shuffle,
    checksum: f.checksum,
    dataset: f.dataset,
    giveUpAfter: duration(f.giveUpAfter, '--give-up-after'),
  };
  // checked now, as the library checks them when the first frame comes: a typo costs no wait
  pipelineOf({ ...store, method: f.method as StreamOptions['method'] }, {});
  return {
    ...store,
    method: f.method as StreamOptions['method'],
    format: f.format as StreamOptions['format'],
    series: f.series === undefined ? undefined : int(f.series, '--series'),
    forever: f.forever,
    maxBuffered: f.maxBuffered === undefined ? undefined : parseSize(f.maxBuffered, '--max-buffered'),
    spool: f.spool,
    spoolMax: f.spoolMax === undefined ? undefined : parseSize(f.spoolMax, '--spool-max'),
  };
}

async function doStream(endpoint: string, destUrl: string, f: StreamFlags): Promise<number> {
  // every setting is checked before anything connects
  checkConnection(f);
  const options = streamOptions(f);
  const out = runRenderer(f, controls(f));
  const interrupt = interruptible();
  try {
    const summary = await stream(endpoint, destUrl, { ...options, onProgress: out.emit, signal: interrupt.signal });
    for (const s of summary.series) {
      const gaps = [s.missing.length ? `${s.missing.length} missing` : '', s.repeated.length ? `${s.repeated.length} repeated` : ''].filter(Boolean).join(', ');
      if (f.json) process.stdout.write(JSON.stringify({ type: 'series', ...s }) + '\n');
      else if (!f.quiet) process.stderr.write(`fur stream: series ${s.series}: ${s.frames} frames → ${printable(s.destination)}${gaps ? ` (frame numbers: ${gaps})` : ''}\n`);
    }
    return summary.series.some((s) => s.missing.length || s.repeated.length) ? 3 : 0;
  } finally {
    out.end();
    interrupt.release();
  }
}

/** bytes, as 64M, 2G, 500k or a plain number */
function parseSize(text: string, setting: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  const n = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!(n >= 1)) throw new FurError('bad-option', `${setting} '${text}': give a size such as 64M or 2G`, { setting, value: text });
  return Math.floor(n);
}

export function program(): Command {
  const p = new Command('fur')
    .description('Move instrument frames to remote storage as HDF5, while capture goes on.')
    .version(FUR_VERSION, '-V, --version', 'print fur\'s version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `
Examples:
  fur demo                        (a simulated camera uploading to a built-in SFTP server, checked)
  fur watch /data/camera sftp://me@archive.lab/runs/run42.h5 --delete-source --stop-file capture.done
  fur upload ./run42 file:///mnt/share/run42 --method batches --batch 500
  fur verify ./run42 sftp://me@archive.lab/runs/run42.h5

Exit codes: 0 every frame committed (or verified), 1 the run failed, 2 bad usage,
3 the run ended but some files were kept unused or some frames did not verify.
Run fur COMMAND --help for a command's options.`);

  addNotFrames(addCommon(p.command('upload').argument('<SRC>', 'folder with a finished capture').argument('<DEST>', 'sftp://user@host[:port]/path, ftps://user@host[:port]/path, s3://bucket/prefix or file:///path')),
    'the capture\'s stop file (e.g. capture.done): never a frame')
    .description('upload a finished capture')
    .addHelpText('after', `
Examples:
  fur upload ./run42 sftp://me@archive.lab/data/run42.h5 --compression gzip:4
  fur upload ./jpegs file:///mnt/share/run42 --method files --delete-source
  fur upload ./raw sftp://me@archive/data/run.h5 --dtype uint16 --shape 2048x2048 --pattern 'img_*.raw'`)
    .action(async function (this: Command, src: string, dest: string) { this.setOptionValue('_code', await doRun(src, dest, this.opts(), false)); });

  const w = addCommon(p.command('watch').argument('<SRC>', 'folder the instrument writes into').argument('<DEST>', 'sftp://user@host[:port]/path, ftps://user@host[:port]/path, s3://bucket/prefix or file:///path'))
    .description('upload frames continuously while the instrument captures')
    .option('--count <n>', 'stop after this many frames')
    .option('--idle <seconds>', 'stop when no new file came for this long')
    .option('--quiet-period <seconds>', `a file is complete when unchanged this long (default ${DEFAULT_QUIET_MS / 1000})`)
    .addOption(new Option('--completion <mode>', 'how a file is known complete: quiet period, marker file, or rename into place').choices(['quiet', 'marker', 'rename']).default('quiet'));
  addNotFrames(w, 'stop when a file of this name appears in SRC (it is never a frame)')
    .addHelpText('after', `
Ends on --count, --stop-file, --idle, or Ctrl-C / SIGTERM — always after committing what is queued.
Examples:
  fur watch /data/camera sftp://me@archive.lab/runs/run42.h5 --delete-source --stop-file capture.done
  fur watch ./det file:///mnt/share/run42 --method batches --batch 500 --count 10000 --json`)
    .action(async function (this: Command, src: string, dest: string) { this.setOptionValue('_code', await doRun(src, dest, this.opts(), true)); });

  addReporting(addStore(p.command('stream'), ['append', 'batches'])).argument('<ENDPOINT>', 'the sender\'s ZeroMQ PUSH socket, e.g. tcp://detector:9999').argument('<DEST>', 'sftp://user@host[:port]/path, ftps://user@host[:port]/path, s3://bucket/prefix or file:///path')
    .description('store frames a detector or DAQ sends over ZeroMQ (DECTRIS EIGER stream v1, or plain JSON + bytes)')
    .addOption(new Option('--format <format>', 'the sender\'s format (default: recognised from the first message)').choices(['eiger', 'plain']))
    .option('--series <n>', 'series to store before ending (one file each, named after the series, when more than one)', '1')
    .option('--forever', 'store series until stopped (Ctrl-C / SIGTERM)')
    .option('--max-buffered <size>', 'frames held in memory until committed before reading waits (the sender is then held back by ZeroMQ)', '64M')
    .option('--spool <dir>', 'write every frame to this local folder until it is committed: the stream is drained while the destination is slower, and a run started again with the same folder commits what a killed one left')
    .option('--spool-max <size>', 'bytes the spool may hold before the sender is held back', '4G')
    .addHelpText('after', `
Ends after --series series (dseries_end-1.0, or {"end": true}), or on Ctrl-C / SIGTERM — always after committing what came.
Missing or repeated frame numbers are reported (exit 3); a repeated frame is not stored twice.
Examples:
  fur stream tcp://eiger.lab:9999 sftp://me@archive.lab/runs/run42.h5
  fur stream tcp://daq.lab:5555 file:///mnt/share/scan7 --method batches --format plain --forever`)
    .action(async function (this: Command, endpoint: string, dest: string) { this.setOptionValue('_code', await doStream(endpoint, dest, this.opts())); });

  const v = addConnection(p.command('verify')).argument('<SRC>', 'folder with the source files (omit to check the destination against its own frame hashes)').argument('[DEST]', 'what was uploaded to')
    .description('compare the destination with the local source files, frame by frame — or, given only DEST, with the SHA-256 of each frame recorded at upload')
    .addOption(new Option('--method <method>', 'how it was uploaded').choices(['append', 'batches', 'files']).default('append'))
    .option('--pattern <glob>', 'which files in SRC are frames', '*')
    .option('--dtype <type>', 'element type of raw files').option('--shape <dims>', 'frame shape of raw files').option('--format <fmt>', 'raw | npy | tiff | bytes')
    .option('--dataset <path>', 'HDF5 dataset path of the frames', DEFAULTS.dataset)
    .option('--json', 'print the report as JSON');
  addNotFrames(v, 'the capture\'s stop file (e.g. capture.done): never a frame');
  v.addHelpText('after', `
Examples:
  fur verify ./run42 sftp://me@archive.lab/data/run42.h5
  fur verify sftp://me@archive.lab/data/run42.h5          (no sources: checks the recorded frame hashes)
  fur verify ./jpegs file:///mnt/share/run42 --method files`);
  v.action(async function (this: Command, first: string, second: string | undefined) {
    const f = this.opts() as CommonFlags;
    const [src, destUrl] = second === undefined ? [undefined, first] : [first, second];
    checkConnection(f);
    compileGlob(f.pattern, '--pattern');
    checkNotFrames(f);
    checkDataset(f.dataset);
    const read = readOptions(f);
    if (src !== undefined) await checkSource(src);
    const { dest, path } = await connect(destUrl, f.method, f);
    try {
      const method = f.method as PipelineOptions['method'];
      // loaded only for this command (start-up of the others does not pay for it)
      const { verify, verifySelf } = await import('../pipeline/verify.js');
      const r = src === undefined
        ? await verifySelf({ dest, destPath: path, method, dataset: f.dataset })
        : await verify({ sourceDir: src, pattern: f.pattern, notFrames: { stopFile: f.stopFile, markerSuffix: f.marker }, dest, destPath: path, method, dataset: f.dataset, read });
      const ok = r.different.length === 0 && r.missing.length === 0 && r.damaged.length === 0 && r.unreadable.length === 0;
      if (f.json) process.stdout.write(JSON.stringify({ type: 'verify', ok, ...r }) + '\n');
      else {
        // without sources, "equal" can only mean: equal to the hash recorded beside the frame
        process.stderr.write(`fur verify: ${r.equal} equal, ${r.different.length} different, ${plural(r.missing.length, 'file')} missing at the destination` +
          (src === undefined ? ' (no sources given: each frame compared with the SHA-256 recorded when it was stored)' : `, ${plural(r.remoteOnly, 'remote frame')} without a local source`) + '\n');
        for (const d of r.different.slice(0, 20)) process.stderr.write(`  differs: ${printable(d.file)} frame ${d.frame}\n`);
        for (const m of r.missing.slice(0, 20)) process.stderr.write(`  missing: ${printable(m)}\n`);
        for (const d of r.damaged.slice(0, 20)) process.stderr.write(`  checksum failed: ${printable(d.file)} ${d.dataset} rows ${d.rows[0]}-${d.rows[1] - 1} (the stored chunk changed after it was written)\n`);
        for (const u of r.unreadable.slice(0, 20)) process.stderr.write(`  not compared: ${printable(u.message)}\n`);
      }
      this.setOptionValue('_code', ok ? 0 : 3);
    } finally { await dest.close(); }
  });

  addConnection(p.command('index')).argument('<FILE>', 'a fur-written HDF5 file: local path, file:// or sftp:// URL')
    .description('write the kerchunk chunk-index sidecar (<FILE>.kerchunk.json) beside a fur-written file')
    .option('--url <url>', 'the URL readers will fetch the file from (default: the FILE URL)')
    .option('-o, --output <path>', 'write the references here (local path) instead of beside the file')
    .addHelpText('after', `
Examples:
  fur index ./run42.h5
  fur index sftp://me@archive.lab/data/run42.h5 --url https://archive.lab/data/run42.h5`)
    .action(async function (this: Command, target: string) {
      const f = this.opts();
      checkConnection(f);
      if (f.url !== undefined && !URL.canParse(f.url)) throw new FurError('bad-option', `--url ${f.url}: not a URL; give the address readers will fetch the file from`, { setting: '--url', value: f.url });
      if (f.output !== undefined) await checkOutput(f.output);
      const { dest, path } = await connect(target, 'append', f);
      try {
        const file = await H5File.open(await dest.openRead(path), { readOnly: true });
        try {
          const refs = await buildReferences(file, f.url ?? fileUrl(dest, path));
          if (f.output) await writeFile(f.output, JSON.stringify(refs));
          else await putSidecar(dest, path, refs);
          const chunks = Object.values(refs.refs).filter((v) => Array.isArray(v)).length;
          process.stderr.write(`fur index: ${chunks} chunk references → ${f.output ?? sidecarPath(path)}\n`);
        } finally { await file.close(); }
      } finally { await dest.close(); }
      this.setOptionValue('_code', 0);
    });

  addConnection(p.command('get')).argument('<URL>', 'a fur-written HDF5 file: http(s)://, sftp:// or file:// URL')
    .description('read part of a remote fur file with range requests (only the chunks the slice needs)')
    .option('--dataset <path>', 'dataset to read', DEFAULTS.dataset)
    .option('--slice <slice>', 'numpy-style selection, e.g. 100:200 or 5,:,0:64 (default: everything)')
    .option('-o, --output <file>', 'write the selection as .npy (variable-length data: the raw bytes of one element)')
    .option('--stats', 'print requests and bytes fetched')
    .addHelpText('after', `
Examples:
  fur get https://archive.lab/data/run42.h5 --slice 100:110 -o frames.npy --stats
  fur get sftp://me@archive.lab/data/run42.h5 --dataset /entry/data/frame_name --slice 0:5`)
    .action(async function (this: Command, url: string) {
      const f = this.opts();
      checkConnection(f);
      checkDataset(f.dataset);
      // the syntax now, before anything is fetched; the ranges once the shape is known
      if (f.slice !== undefined) parseSlice(f.slice, f.slice.split(',').map(() => Number.MAX_SAFE_INTEGER));
      if (f.output !== undefined) await checkOutput(f.output);
      let dest: Destination | undefined;
      let bytes: RemoteBytes;
      if (isHttp(url)) bytes = httpBytes(url);
      else { const c = await connect(url, 'append', f); dest = c.dest; bytes = destinationBytes(c.dest, c.path); }
      try {
        const r = await get(bytes, f.dataset, f.slice);
        const t = r.dataset.type;
        if (r.items) {
          if (f.output) {
            if (r.items.length !== 1) throw new FurError('bad-slice', `--output of variable-length data takes one element; the slice selects ${r.items.length}`, {});
            await writeFile(f.output, r.items[0]);
          } else for (const it of r.items) process.stdout.write((t.class === 'vlen-str' ? Buffer.from(it).toString('utf8') : `<${it.length} bytes>`) + '\n');
        } else if (f.output) {
          const name = dtypeName(t).replace(/^>/, '') as NumericDtype;
          await writeFile(f.output, encodeNpy(name, r.shape, r.data, { bigEndian: 'bigEndian' in t && t.bigEndian }));
        } else process.stdout.write(`shape (${r.shape.join(', ')}) ${dtypeName(t)}, ${r.data.length} bytes; use -o FILE.npy to save\n`);
        if (f.stats) process.stderr.write(`fur get: ${r.stats.requests} requests, ${r.stats.bytes} bytes fetched of a ${r.stats.fileSize}-byte file\n`);
      } finally { await dest?.close(); }
      this.setOptionValue('_code', 0);
    });

  p.command('demo')
    .description('watch a simulated camera and upload to an in-process SFTP server, then verify')
    .option('--frames <n>', 'frames the camera writes', '300')
    .option('--fps <n>', 'camera frame rate', '30')
    .option('--shape <dims>', 'frame shape', '434x434x3')
    .option('--dtype <type>', 'frame element type', 'uint8')
    .addOption(new Option('--method <method>', 'upload method').choices(['append', 'batches', 'files']).default('append'))
    .option('--keep', 'keep the temporary folders and print where they are')
    .option('--json', 'print one JSON status event per line')
    .addHelpText('after', `
Examples:
  fur demo
  fur demo --frames 1800 --method batches
  fur demo --shape 2048x2048 --dtype uint16 --fps 10 --keep`)
    .action(async function (this: Command) {
      const f = this.opts();
      this.setOptionValue('_code', await (await import('./demo.js')).demo({
        frames: count(f.frames, '--frames'), fps: positive(f.fps, '--fps'), shape: parseShape(f.shape, '--shape'),
        dtype: numericDtype(f.dtype), method: f.method, keep: f.keep ?? false, json: f.json ?? false,
      }));
    });
  p.command('config')
    .description('check a config file')
    .command('check').argument('[FILE]', 'the TOML file (default $FUR_CONFIG)')
    .description('check a config file and print the settings each command would use, secrets masked')
    .addHelpText('after', `
Examples:
  fur config check /etc/fur/lab.toml
  FUR_CONFIG=~/fur.toml fur config check`)
    .action(async function (this: Command, file: string | undefined) {
      const path = file ?? process.env.FUR_CONFIG;
      if (!path) throw new FurError('bad-option', 'fur config check: give the FILE, or set FUR_CONFIG', { setting: 'FILE' });
      process.stdout.write(await configCheck(path));
      this.setOptionValue('_code', 0);
    });

  // settings from --config / $FUR_CONFIG, under what the command line gave
  p.hook('preAction', (_p, action) => {
    const path = (action.opts() as { config?: string }).config ?? process.env.FUR_CONFIG;
    if (path === undefined || !action.options.some((o) => o.long === '--config')) return;
    origins = applyConfig(action, loadConfig(path), p);
  });
  return p;
}

/** where settings taken from a config file came from, for messages */
let origins = new Map<string, Origin>();

/**
 * `fur config check`: every setting of every command that takes a config, from the file or by
 * default, as TOML (secrets masked), after the checks a run makes before connecting.
 */
async function configCheck(path: string): Promise<string> {
  const cfg = loadConfig(path);
  const prog = program();
  const out = [`# settings from ${path}; options given on the command line win over these`];
  for (const cmd of configurable(prog)) {
    const from = applyConfig(cmd, cfg, prog);
    const f = cmd.opts() as WatchFlags;
    try {
      if (cmd.name() === 'upload' || cmd.name() === 'watch') {
        validate(await pipelineOptions(f));
        controls(f);
        compileGlob(f.pattern, '--pattern');
        checkNotFrames(f);
        if (f.serve !== undefined) (await import('../serve/address.js')).parseServe(f.serve);
        if (cmd.name() === 'watch') watchSettings(f);
      }
      if (cmd.name() === 'stream') {
        streamOptions(cmd.opts() as StreamFlags);
        controls(cmd.opts() as StreamFlags);
      }
    } catch (e) {
      throw isFurError(e) ? withOrigin(e, from) : e;
    }
    out.push('', `[${cmd.name()}]`);
    const seen = new Set<string>();
    for (const o of cmd.options) {
      const attr = o.attributeName();
      const key = o.long?.replace(/^--(no-)?/, '');
      const value = cmd.getOptionValue(attr);
      if (!key || seen.has(attr) || value === undefined || key === 'config') continue;
      seen.add(attr);
      const origin = from.get(`--${key}`);
      const shown = masked(key, value);
      const toml = typeof shown === 'string' && /^\d+(\.\d+)?$/.test(shown) ? shown : JSON.stringify(shown);
      out.push(`${`${key} = ${toml}`.padEnd(40)} # ${origin ? `line ${origin.line}` : 'default'}`);
    }
  }
  return out.join('\n') + '\n';
}

/** A setting's error, told with the config file line it came from. */
function withOrigin<E extends FurError>(e: E, from: Map<string, Origin>): E {
  const setting = (e.fields as { setting?: unknown }).setting;
  const origin = typeof setting === 'string' ? from.get(setting) : undefined;
  if (!origin) return e;
  return new FurError(e.tag, `${e.message} (set in ${origin.path} line ${origin.line})`, e.fields as never, { cause: e }) as E;
}


export async function main(argv: string[]): Promise<number> {
  origins = new Map();
  const p = program();
  try {
    await p.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (isFurError(e)) {
      process.stderr.write(`fur: ${printable(withOrigin(e, origins).message)}\n`);
      const code = exitCodeOf(e.tag);
      // a program reading --json decides on the tag and its fields, not on the English line
      if (argv.includes('--json')) process.stdout.write(JSON.stringify({ type: 'error', tag: e.tag, message: e.message, fields: e.fields, exitCode: code }) + '\n');
      return code;
    }
    process.stderr.write(`fur: ${(e as Error)?.stack ?? e}\n`);
    return 1;
  }
  const sub = p.commands.find((c) => c.getOptionValue('_code') !== undefined);
  return (sub?.getOptionValue('_code') as number | undefined) ?? 0;
}

function numericDtype(text: string): Exclude<ReturnType<typeof parseDtype>, 'bytes'> {
  const d = parseDtype(text, '--dtype');
  if (d === 'bytes') throw new FurError('bad-option', '--dtype bytes: the demo camera writes numeric frames; use uint8, uint16, …', { setting: '--dtype' });
  return d;
}
