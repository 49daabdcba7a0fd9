import type { RandomAccess } from '../hdf5/sink.js';

/** What a destination can do; the pipeline picks methods and commit steps from these. */
export interface Capabilities {
  /** write at arbitrary offsets of an existing file (needed by `append`) */
  positionalWrite: boolean;
  /** atomic rename into place (temporary name, then final name) */
  rename: boolean;
  /** durable sync of a written file (fsync, fsync@openssh.com) */
  fsync: boolean;
}

export interface RemoteStat {
  size: number;
  mtimeMs: number;
  isDirectory: boolean;
}

/** An open remote file: a positional sink that can also read back. */
export interface RemoteFile extends RandomAccess {
  readonly path: string;
}

/**
 * One remote storage location (a directory on a server, a mounted share, a bucket prefix).
 * Paths are POSIX-style and relative to the destination's root unless absolute.
 */
export interface Destination {
  readonly url: string;
  readonly capabilities: Capabilities;
  /** open for writing; `truncate` starts the file empty, otherwise existing bytes are kept */
  openWrite(path: string, opts?: { truncate?: boolean }): Promise<RemoteFile>;
  openRead(path: string): Promise<RemoteFile>;
  stat(path: string): Promise<RemoteStat | null>;
  mkdirp(path: string): Promise<void>;
  /** replace `to` atomically with `from` */
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  close(): Promise<void>;
}
