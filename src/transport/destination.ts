import type { RandomAccess } from '../hdf5/sink.js';

/** What a destination can do; the pipeline picks methods and commit steps from these. */
export interface Capabilities {
  /** write at arbitrary offsets of an existing file (needed by `append`) */
  positionalWrite: boolean;
  /** atomic rename into place (temporary name, then final name) */
  rename: boolean;
  /** durable sync of a written file (fsync, fsync@openssh.com) */
  fsync: boolean;
  /**
   * A file is durable once its write is acknowledged, with no sync to ask for (S3: an upload is
   * acknowledged once stored). Where neither this nor `fsync` holds (an SFTP server without
   * fsync@openssh.com, FTP), a server crash may lose a commit: sources are deleted only once their
   * frames read back intact (pipeline/cleanup.ts).
   */
  durableWrites?: boolean;
  /**
   * `rename` onto an existing name replaces it in one step (POSIX rename, posix-rename@openssh.com).
   * When false, replacing is remove-then-rename and a crash in between leaves no file at `to`;
   * renaming onto a fresh name is still atomic.
   */
  atomicReplace?: boolean;
  /**
   * Largest write the destination carries in one request (SFTP: the server's write limit).
   * Writers gain nothing by issuing bigger writes, and lose pipelining by issuing much smaller ones.
   */
  maxWriteSize?: number;
  /**
   * An open file does its requests in the order they are made (SFTP: one channel's requests, and
   * fences sent behind the writes on every channel): a caller may issue write, sync and close
   * without waiting in between, and every one still follows the ones before it.
   */
  ordered?: boolean;
}

export interface RemoteStat {
  size: number;
  mtimeMs: number;
  isDirectory: boolean;
}

/**
 * An open remote file: a positional sink that can also read back.
 *
 * Writes may be issued without awaiting; the bytes passed to `write` must stay unchanged until its
 * promise settles (or until a later `flush` resolves), because they may still be queued. The first
 * failed write poisons the file: every later write, `flush`, `sync` and `close` rejects with that
 * same error, so a caller that only awaits `flush` still learns the original cause. `close`
 * follows every write issued before it, so a caller may close without awaiting its writes.
 */
export interface RemoteFile extends RandomAccess {
  readonly path: string;
  /**
   * Resolves once no more than `limit` bytes of writes wait to be sent. Writes are accepted at
   * once and held until the link takes them; a producer faster than the link waits here, so what
   * is held stays bounded (absent: the destination holds nothing back, e.g. a local file).
   */
  backlog?(limit: number): Promise<void>;
}

/**
 * A small record at one path that only one writer can create: what a lease stands on
 * (pipeline/lease.ts). `create` is the one atomic step; the others reach what it made.
 */
export interface ExclusiveRecord {
  /**
   * Create it holding `data` if nothing is at its path — atomically, so of several callers at
   * once exactly one gets true. False when something is there already (it is left unchanged).
   */
  create(data: Uint8Array): Promise<boolean>;
  /** its bytes; null when there is none; empty when it exists but holds nothing yet */
  read(): Promise<Uint8Array | null>;
  /** overwrite it with `data` (same length or longer); false when it is gone — never creates it */
  replace(data: Uint8Array): Promise<boolean>;
  /** remove it; one already gone is not an error */
  remove(): Promise<void>;
}

/**
 * One remote storage location (a directory on a server, a mounted share, a bucket prefix).
 * Paths are POSIX-style and relative to the destination's root unless absolute.
 */
export interface Destination {
  readonly url: string;
  readonly capabilities: Capabilities;
  /**
   * open for writing; `truncate` starts the file empty, otherwise existing bytes are kept.
   * `bulk`: the file will take far more than one request's worth of data at once (the frames of
   * an append): a destination that spreads a file over several channels may open it on all of
   * them now, rather than one by one as its data queues up.
   */
  openWrite(path: string, opts?: { truncate?: boolean; bulk?: boolean }): Promise<RemoteFile>;
  openRead(path: string): Promise<RemoteFile>;
  stat(path: string): Promise<RemoteStat | null>;
  mkdirp(path: string): Promise<void>;
  /** replace `to` atomically with `from` */
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  /**
   * The record at `path` only one writer can create (exclusive create): O_EXCL in a local or
   * mounted folder, OPEN with CREAT|EXCL over SFTP, a conditional PUT (If-None-Match: *) on S3;
   * FTP has none, so over FTPS it is a directory (MKD fails when one exists) with the record in it.
   */
  exclusive(path: string): ExclusiveRecord;
  close(): Promise<void>;
}
