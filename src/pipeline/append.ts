/**
 * The `append` method: one HDF5 file at the destination, every batch appended to it and
 * committed (data, then per-frame datasets, then the frames' extent). The file is valid at every
 * instant; a restarted run reopens it and continues after its last commit.
 */
import { posix } from 'node:path';
import { FurError, isFurError } from '../errors.js';
import { H5File, LIVE_TRIM_GRACE_MS } from '../hdf5/index.js';
import type { Destination, RemoteFile } from '../transport/destination.js';
import { buildReferences, type References } from '../index/kerchunk.js';
import { fileUrl, putSidecar, stageSidecar } from '../index/sidecar.js';
import { FUR_VERSION } from '../version.js';
import type { BatchStream, SourceItem } from './batch.js';
import { TEMP_SUFFIX } from './batches.js';
import { frameBytes } from '../source/frame.js';
import { appendBlocks, createFrameDatasets, frameChunks, framesPath, furMethod, openFrameDatasets, perFrameOf, readCommitted, type FrameDatasets, type FrameLayout } from './layout.js';
import type { PipelineOptions } from './options.js';
import type { CommitResult, StreamingTarget } from './target.js';

/** a sidecar read from the index, being written under its temporary name; `named` gives it its name */
interface StagedSidecar {
  refs: Promise<References>;
  named: Promise<() => Promise<number>>;
}

/** a sidecar larger than this is rewritten at most every SIDECAR_INTERVAL_MS, not at every commit */
const SIDECAR_SMALL = 1 << 20;
/**
 * Frame bytes written but not yet taken by the link that appending may run ahead by: enough to
 * keep every channel fed when room appears, little enough that memory does not grow with a batch.
 */
const BACKLOG_BYTES = 8 << 20;
/** frame bytes per commit at most (see batchFrames) */
const COMMIT_BYTES = 64 << 20;
const SIDECAR_INTERVAL_MS = 10_000;
/**
 * Frames this large get a chunk each (unless --chunk-frames says otherwise): a commit then never
 * ends inside a chunk, so no partial chunk is written again at each commit and no tail slots are
 * needed. Measured (docs/hdf5-layout.md, "Space"): 40 frames of 1 MiB in 22 commits, 5-frame
 * chunks wrote 124 MB for a 53.6 MB file; one frame a chunk, 42.3 MB for 43.2 MB.
 */
const WHOLE_FRAME_CHUNK = 1 << 20;

/**
 * How append stores frames like `block`'s: the frames dataset's chunk shape in a new file, and the
 * most frames one commit holds (in a file whose frames come `chunkFrames` to a chunk, when it is
 * continued). The run and --dry-run both ask here, so a dry run lists the batches a run makes.
 */
export function appendPlan(block: Pick<SourceItem['block'], 'dtype' | 'shape' | 'count' | 'data' | 'encoding'>, o: PipelineOptions, chunkFrames?: number): { chunks: number[]; commitFrames: number } {
  const layout = { dtype: block.dtype, shape: block.shape, encoding: block.encoding };
  const chunks = frameChunks(layout, chunking(layout, o));
  if (block.dtype === 'bytes') return { chunks, commitFrames: o.batchFrames };
  const frameBytes = block.data.length / Math.max(1, block.count);
  const chunk = chunkFrames ?? chunks[0]!;
  const fit = Math.max(1, Math.floor(COMMIT_BYTES / Math.max(1, chunk * frameBytes)));
  return { chunks, commitFrames: Math.min(o.batchFrames, fit * chunk) };
}

/** the options the frames dataset is made with: one frame a chunk for large frames (WHOLE_FRAME_CHUNK) */
function chunking(layout: FrameLayout, o: PipelineOptions): PipelineOptions {
  if (o.chunkFrames !== undefined) return o;
  const bytes = frameBytes(layout.dtype, layout.shape);
  return bytes !== undefined && bytes >= WHOLE_FRAME_CHUNK ? { ...o, chunkFrames: 1 } : o;
}

export class AppendTarget implements StreamingTarget {
  readonly committed = new Map<string, number>();
  readonly hashes = new Map<string, Uint8Array[]>();
  private file?: H5File;
  private ds?: FrameDatasets;
  private remote?: RemoteFile;
  private exists: boolean;
  /** the temporary name of a new file until its first batch is committed */
  private creating?: string;
  private sidecarAt = 0;
  private sidecarBytes = 0;
  /** commits made by this run */
  private commits = 0;
  /** the last sidecar read from the index: after which commit, and whether its upload succeeded */
  private sidecar?: { commit: number; refs: References; written: boolean };
  /** the sidecar being uploaded in the background */
  private uploading?: Promise<void>;
  /**
   * Commits the caller may have in flight at once: the next batch is appended while the
   * previous commit runs its barriers (H5File's onSealed), so a long link stays busy.
   */
  readonly concurrency = 2;
  /** the previous commit has sealed: this batch's rows may be appended */
  private sealed: Promise<void> = Promise.resolve();
  /** the previous commit is published and the sidecar has read its chunk index */
  private done: Promise<void> = Promise.resolve();
  /** the first failure: later commits must not publish rows of a batch that failed */
  private failure: unknown;

  private constructor(private dest: Destination, private path: string, private o: PipelineOptions, exists: boolean) {
    this.exists = exists;
  }

  static async open(dest: Destination, path: string, o: PipelineOptions): Promise<AppendTarget> {
    if (!dest.capabilities.positionalWrite) {
      throw new FurError('method-unsupported', `${dest.url}: append needs positional writes, which this destination lacks; use --method batches`, { url: dest.url });
    }
    const st = await dest.stat(path);
    if (st?.isDirectory) throw new FurError('not-a-file', `${dest.url}/${path} is a directory; for --method append the URL names the HDF5 file`, { path });
    const t = new AppendTarget(dest, path, o, st !== null && st.size > 0);
    if (t.exists) await t.reopen();
    return t;
  }

  private where(): string { return `${this.dest.url.replace(/\/$/, '')}/${this.path}`; }

  /** Reopen an existing file: learn what is committed, repair per-frame datasets a crash left long. */
  private async reopen(): Promise<void> {
    this.remote = await this.dest.openWrite(this.path, { bulk: true });
    let file: H5File;
    let meta: RemoteFile | undefined;
    try {
      // a second handle for commit metadata: see FileOptions.metaSink
      meta = await this.dest.openWrite(this.path);
      file = await H5File.open(this.remote, { durable: this.dest.capabilities.fsync, metaSink: meta });
    } catch (e) {
      await meta?.close().catch(() => undefined);
      await this.remote.close().catch(() => undefined);
      // only a file that does not parse as fur's is refused; a broken connection is just that
      if (!isFurError(e, 'hdf5-format') && !(e instanceof RangeError)) throw e;
      throw new FurError('not-a-fur-file', `${this.where()}: cannot continue this file (${(e as Error).message}); fur only appends to files it wrote — choose a new file name`, { path: this.path }, { cause: e });
    }
    // only a file fur made for appending is continued; another program's HDF5 file, even one laid
    // out like fur's, is left as it is (closed without a write). A file with nothing in it is
    // fur's own, cut before its first commit.
    const method = await furMethod(file);
    if (method !== 'append' && !(method === undefined && file.paths().length === 1)) {
      await meta?.close().catch(() => undefined);
      await this.remote.close().catch(() => undefined);
      throw new FurError('not-a-fur-file', `${this.where()}: ${method === undefined ? 'not written by fur' : `written by fur --method ${method}`}; fur only appends to files it wrote with --method append — choose a new file name`, { path: this.path });
    }
    this.file = file;
    const frames = file.has(framesPath(file, this.o.dataset)) ? file.dataset(framesPath(file, this.o.dataset)).shape[0] : 0;
    await readCommitted(file, this.o.dataset, frames, this.committed, this.hashes);
  }

  async commitStream(batch: BatchStream): Promise<CommitResult> {
    const previous = { sealed: this.sealed, done: this.done };
    let sealed!: () => void;
    let done!: () => void;
    this.sealed = new Promise<void>((resolve) => { sealed = resolve; });
    this.done = new Promise<void>((resolve) => { done = resolve; });
    try {
      await previous.sealed;
      if (this.failure !== undefined) throw this.failure;
      const { bytes, rows } = await this.append(batch);
      // the chunk index may be rewritten once the sidecar of the previous commit has read it
      await previous.done;
      if (this.failure !== undefined) throw this.failure;
      // the capture's last batch: its commit states the final EOF (no headroom), so closing needs
      // no commit of its own and the trim's grace (see H5File.close) runs while this one
      // publishes; so does the writing of its sidecar
      let staged: StagedSidecar | undefined;
      const onStructured = batch.last ? () => { staged = this.stageSidecar(); } : undefined;
      await this.file!.commit({ publishLast: this.ds!.data, onSealed: sealed, trim: batch.last, onStructured });
      this.commits++;
      if (this.creating) {
        // the first commit: the file opens now, and takes its name (the open handles follow it)
        await this.dest.rename(this.creating, this.path);
        this.creating = undefined;
      }
      const frames = this.ds!.data.shape[0];
      // the chunk index beside the file follows every commit while it is small; a big one (a long
      // capture: ~60 bytes per chunk) is rewritten every few seconds, and always at close
      if (staged) await this.nameSidecar(staged);
      else if (this.sidecarBytes < SIDECAR_SMALL || Date.now() - this.sidecarAt >= SIDECAR_INTERVAL_MS) await this.refreshSidecar();
      return { frames, bytes, fileBytes: this.file!.size, stored: { path: this.path, rows } };
    } catch (e) {
      this.failure ??= e;
      throw e;
    } finally {
      sealed();
      done();
    }
  }

  /**
   * A commit holds at most COMMIT_BYTES of frames (whole chunks of the frames dataset, so commits
   * still end on chunk boundaries): sources are deleted a commit at a time, so with large frames
   * a --batch of 100 would keep gigabytes on the local disk until its commit, and a crash would
   * send them again. Fewer frames per commit cost nothing in the file.
   */
  batchFrames(first: SourceItem): number {
    return appendPlan(first.block, this.o, this.framesChunk()).commitFrames;
  }

  /** Frames to a chunk of the frames dataset already there (a continued file's, before its first batch too). */
  private framesChunk(): number | undefined {
    if (this.ds) return this.ds.data.chunk?.[0] ?? 1;
    const at = this.file && framesPath(this.file, this.o.dataset);
    return at && this.file!.has(at) ? this.file!.dataset(at).chunk?.[0] ?? 1 : undefined;
  }

  /** Add a batch's rows (not yet committed), each file's frames as they are read: its bytes and rows [start, end). */
  private async append(batch: BatchStream): Promise<{ bytes: number; rows: [number, number] }> {
    const layout = { dtype: batch.first.dtype, shape: batch.first.shape, encoding: batch.first.encoding };
    if (!this.file) {
      // A new file is made under a temporary name and takes its own once its first batch is
      // committed, so the destination never shows a file that does not open: a cut, a full disk
      // or a kill before then leaves the temporary, which the next run starts over.
      const dir = posix.dirname(this.path);
      const temp = posix.join(dir, `.${posix.basename(this.path)}${TEMP_SUFFIX}`);
      await this.dest.mkdirp(dir);
      // a second handle for commit metadata (see FileOptions.metaSink), opened at the same time
      const [remote, meta] = await Promise.all([this.dest.openWrite(temp, { truncate: true, bulk: true }), this.dest.openWrite(temp)]);
      this.remote = remote;
      // EOF headroom for a few batches: the superblock's EOF then moves every few commits, not at each
      const eofHeadroom = Math.min(256 << 20, Math.max(1 << 20, 4 * batch.want * (batch.first.fileBytes / Math.max(1, batch.first.frames))));
      this.file = await H5File.create(this.remote, { durable: this.dest.capabilities.fsync, metaReserve: 1 << 20, metaSink: meta, eofHeadroom, deferFirstCommit: true, spaceRecord: true });
      this.file.setAttr('/', 'fur_version', FUR_VERSION);
      this.file.setAttr('/', 'fur_method', 'append');
      // named once the first batch is committed in it (see commitStream): its frames need not
      // wait for a commit of an empty file and a rename, a few round trips on a long link
      this.creating = temp;
    }
    if (!this.ds) {
      const frames = framesPath(this.file, this.o.dataset);
      const committedFrames = this.file.has(frames) ? this.file.dataset(frames).shape[0] : -1;
      this.ds = committedFrames < 0 ? createFrameDatasets(this.file, layout, chunking(layout, this.o)) : openFrameDatasets(this.file, layout, this.o, this.where());
      if (committedFrames >= 0) {
        // per-frame datasets are published before the frames: cut them back to the frames
        for (const d of perFrameOf(this.ds)) await d.truncate(committedFrames);
      }
    }
    // the batch's files are kept by the caller for cleanup; its frames, only until they are written
    // the rows are counted as they go: the dataset's extent moves only when the commit publishes
    const start = this.ds.data.shape[0];
    let rows = 0;
    const blocks = (async function* () { for await (const item of batch.items) { rows += item.block.count; yield item.block; } })();
    const bytes = await appendBlocks(this.ds, blocks, () => this.remote!.backlog?.(BACKLOG_BYTES) ?? Promise.resolve());
    return { bytes, rows: [start, start + rows] };
  }

  /**
   * Read the chunk index for the sidecar now (the next commit waits for that), and upload it in
   * the background: the next batch need not wait for it. One upload at a time; while one runs,
   * the next commit's refresh is skipped. A failed upload does not stop the capture (the frames
   * come first, and they are committed): close uploads the sidecar again, and fails the run if
   * that fails too.
   */
  private async refreshSidecar(): Promise<void> {
    if (this.uploading) return;
    const refs = await buildReferences(this.file!, fileUrl(this.dest, this.path));
    this.uploadSidecar(refs, putSidecar(this.dest, this.path, refs));
  }

  /**
   * `refs` is this commit's sidecar, and `sending` uploads it (resolving to its size): that
   * upload runs in the background, until close or the next one. A failed upload does not stop
   * the run: close writes the sidecar again.
   */
  private uploadSidecar(refs: References, sending: Promise<number>): void {
    const sidecar = { commit: this.commits, refs, written: false };
    this.sidecar = sidecar;
    this.sidecarAt = Date.now();
    const uploading: Promise<void> = sending
      .then((n) => { this.sidecarBytes = n; sidecar.written = true; }, () => { /* written again at close */ })
      // a later upload may have taken its place (see stageSidecar)
      .finally(() => { if (this.uploading === uploading) this.uploading = undefined; });
    this.uploading = uploading;
  }

  /**
   * The last commit's sidecar, read from the index and written under its temporary name while
   * that commit publishes (called once its structures are written: see CommitOptions).
   */
  private stageSidecar(): StagedSidecar {
    const refs = buildReferences(this.file!, fileUrl(this.dest, this.path));
    // after any upload still running: both use the same temporary name
    const before = this.uploading ?? Promise.resolve();
    const named = Promise.all([refs, before]).then(([r]) => stageSidecar(this.dest, this.path, r));
    // both are awaited by nameSidecar; a commit that fails first leaves them unawaited
    refs.catch(() => undefined);
    named.catch(() => undefined);
    return { refs, named };
  }

  /** The commit is published: name its staged sidecar, in the background as refreshSidecar uploads one. */
  private async nameSidecar(staged: StagedSidecar): Promise<void> {
    this.uploadSidecar(await staged.refs, staged.named.then((name) => name()));
  }

  async close(): Promise<void> {
    if (this.file && (this.creating || this.failure !== undefined)) {
      // A failed batch's rows may be in the file (a source that turned bad half-way, a lost
      // link): they are not committed, and its per-frame names were never added. Nothing more is
      // published; the sidecar stays as the last commit left it. A file never committed under
      // its name stays a temporary, for the next run to start over.
      await this.uploading;
      await this.file.close({ discard: true });
    } else if (this.file) {
      // A resumed run writes the sidecar too, even with no new frames: the run before it may have
      // been stopped after a commit and before its sidecar (or in the middle of writing it).
      if (this.ds || this.file.has(framesPath(this.file, this.o.dataset))) {
        // the final chunk index is known before the file closes (closing only trims the EOF):
        // upload it, after any upload still running, while the file closes — unless the upload
        // after the last commit carries it already (and succeeds: otherwise this one repairs it)
        const last = this.commits > 0 && this.sidecar?.commit === this.commits ? this.sidecar : undefined;
        const refs = last?.refs ?? await buildReferences(this.file, fileUrl(this.dest, this.path));
        const upload = (async () => {
          await this.uploading;
          if (!last?.written) await putSidecar(this.dest, this.path, refs);
        })();
        const results = await Promise.allSettled([upload, this.file.close({ trimGraceMs: LIVE_TRIM_GRACE_MS })]);
        for (const r of results) if (r.status === 'rejected') throw r.reason;
        return;
      }
      await this.uploading;
      await this.file.close({ trimGraceMs: LIVE_TRIM_GRACE_MS });
    } else if (this.remote) await this.remote.close();
  }
}
