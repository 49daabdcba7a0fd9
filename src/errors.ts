/**
 * Typed errors: every failure fur reports is a `FurError` whose `tag` is one of a closed set of
 * literals, and whose `fields` have the type that tag declares below — the facts a person or a
 * program needs to act (which file, which setting, which server said what). The message is the
 * one-line, actionable text the CLI prints.
 *
 * The set is closed on purpose: what is retried (`isTransient`) and how the command exits
 * (`exitCodeOf`) are switches over every tag, so a tag added here without a decision there does
 * not compile.
 */

/** A setting the user gave (command-line option, config key, API option), as they typed it. */
export interface SettingFields {
  /** `--give-up-after`, `--pattern`, … as the user spells it */
  setting: string;
  value?: unknown;
  /** a file the setting names (`--ca-file`, `--identity`) */
  path?: string;
}

/** Where at a destination something failed; which fields are set depends on the transport. */
export interface RemoteFields {
  /** the destination as shown to the user (passwords masked) */
  url?: string;
  /** a path on the destination (SFTP, FTPS, file://) */
  path?: string;
  bucket?: string;
  /** an object key (S3) */
  key?: string;
  /** the S3 endpoint, when not AWS's own */
  endpoint?: string;
  host?: string;
  port?: number;
  user?: string;
  /** what fur was doing: `open`, `write`, `list`, `upload`, … */
  op?: string;
  /** the system's, server's or SDK's own code: an errno name, an FTP reply code, an S3 error code */
  code?: string | number;
  /** an SFTP status or an HTTP status */
  status?: number;
  /** the FTP server's reply text */
  reply?: string;
  /** the known_hosts file a host key was checked against */
  knownHosts?: string;
  /** the ssh program fur ran (OpenSSH transport): how it ended */
  exitCode?: number | null;
  signal?: string | null;
  /** the host as ssh was asked for it (an alias of an ssh_config, or user@host:port) */
  where?: string;
}

/** A source file fur read (or tried to). */
export interface SourceFields {
  file: string;
  /** the page of a multi-page TIFF */
  page?: number;
  code?: string;
}

/** A frame's own layout, where a file's bytes do not fit it. */
interface FrameLayoutFields extends SourceFields {
  dtype?: string;
  shape?: readonly number[];
}

/** A destination's lease and, when known, the run that holds it. */
interface LeaseFields {
  /** the lease record's path at the destination */
  path: string;
  host?: string;
  pid?: number;
  run?: string;
}

/** The fields each tag carries. */
export interface FurErrorFields {
  // the user's input: settings, URLs, names
  'bad-option': SettingFields;
  'bad-setting': SettingFields;
  'bad-pattern': SettingFields;
  'bad-shape': SettingFields;
  'unknown-dtype': SettingFields;
  'bad-url': { url?: string; path?: string };
  'bad-slice': { slice?: string };
  /** --config / $FUR_CONFIG: the file, and the line of the key when one is at fault */
  'config-file': { path: string; line?: number };
  /** SRC: not there, or not a folder */
  'bad-source': { path: string };
  'bad-identity': { file: string };
  'missing-password': { variable?: string };
  'method-unsupported': { url: string; method?: string };
  'raw-needs-layout': { file: string };
  'needs-sources': Record<string, never>;
  'unsafe-name': { file: string };
  'name-reused': { file: string };

  'no-source': Record<string, never>;

  // frames a program pushes (openCapture) or a stream brings (fur stream)
  'bad-frame': { name?: string };
  'name-committed': { name: string };
  'name-repeated': { name: string };
  'capture-closed': { name: string };
  'attrs-unsupported': { name: string };
  'stream-message': Record<string, never>;
  'spool-damaged': { file: string };

  // sources: the folder and the files in it
  'unreadable-dir': { dir: string; code?: string };
  'unreadable-file': SourceFields;
  'empty-file': SourceFields;
  'empty-frame': FrameLayoutFields;
  'frame-mismatch': FrameLayoutFields & { first?: string; firstDtype?: string; firstShape?: readonly number[]; declared?: readonly number[] };
  'raw-size': FrameLayoutFields & { fileBytes: number; frameBytes: number };
  'npy-bad-header': SourceFields & { version?: number; header?: string };
  'npy-fortran-order': SourceFields;
  'npy-size': SourceFields & { expected: number; actual: number };
  'npy-truncated': SourceFields & { expected?: number; actual?: number };
  'npy-unsupported-dtype': SourceFields & { descr: string };
  'tiff-bad-header': SourceFields;
  'tiff-decode': SourceFields;
  'tiff-mixed-pages': SourceFields;
  'tiff-truncated': SourceFields & { size?: number };
  'tiff-unsupported': SourceFields;

  // connecting and logging in
  'connect-failed': RemoteFields;
  'auth-failed': RemoteFields & { tried?: string[]; serverAllows?: string[]; variable?: string };
  'host-key-changed': RemoteFields & { line?: number };
  'host-key-revoked': RemoteFields & { line?: number };
  'unknown-host-key': RemoteFields;
  /** no ssh program to run (the OpenSSH transport) */
  'ssh-not-found': RemoteFields;
  /** ssh refused its configuration (--ssh-config, ~/.ssh/config) */
  'bad-ssh-config': RemoteFields;
  'known-hosts-unreadable': { file: string };
  'known-hosts-unwritable': { file: string; host: string; port: number };
  'tls-certificate': RemoteFields;
  'tls-unavailable': RemoteFields;
  'wrong-region': RemoteFields;
  'http-failed': { url: string; status?: number };

  // the destination while it works
  'connection-lost': RemoteFields;
  'destination-closed': RemoteFields;
  'file-closed': RemoteFields;
  'remote-failed': RemoteFields;
  'remote-write-failed': RemoteFields & { size?: number; expected?: number };
  'remote-refused': RemoteFields;
  'io-failed': RemoteFields;
  'not-found': RemoteFields;
  'permission-denied': RemoteFields;
  'not-a-directory': RemoteFields;
  'wrong-type': RemoteFields;
  'overwrite-refused': RemoteFields;
  'rename-unsupported': RemoteFields;
  'unsupported-operation': RemoteFields;
  'ftp-refused': RemoteFields;
  'ftp-unsupported': RemoteFields;
  'read-only': RemoteFields;
  'exists': RemoteFields;
  'gave-up': { cause: FurErrorTag; option: string };

  // one writer per destination: the lease on what a run writes
  'lease-held': LeaseFields;
  'lease-busy': LeaseFields;
  'lease-lost': LeaseFields;
  'lease-expired': LeaseFields;
  'stopped-disconnected': Record<string, never>;

  // S3 multipart appends
  'append-order': RemoteFields & { offset: number; length: number };
  'not-readable': RemoteFields & { offset: number; length: number };
  'too-many-parts': RemoteFields;
  'upload-aborted': RemoteFields;
  'upload-lost': RemoteFields & { uploadId?: string; frames?: number };
  'upload-mismatch': RemoteFields & { part: number };
  'bad-upload-record': RemoteFields;
  'object-complete': RemoteFields;
  'metadata-full': RemoteFields;

  // what is stored: HDF5, fur's layout, integrity
  'hdf5-format': { what: string; detail: string };
  'hdf5-usage': { what: string; detail: string };
  'checksum-mismatch': { where: string };
  'layout-mismatch': { where: string };
  'not-a-fur-file': RemoteFields & { where?: string };
  'not-a-file': RemoteFields;
  'no-dataset': { dataset: string };
  'no-hashes': { path: string };
  'read-back-differs': { file: string };
  'filter-unsupported': { filter: string };

  // fur's own servers (the demo's SFTP server) and fur's own bugs
  /** the live view (--serve) could not listen where asked */
  'serve-failed': SettingFields;
  'bad-config': Record<string, never>;
  'bad-key': Record<string, never>;
  'internal': RemoteFields;
}

export type FurErrorTag = keyof FurErrorFields;

/** fields may be left out only where the tag's fields are all optional */
type FieldsArgs<T extends FurErrorTag> = Record<string, never> extends FurErrorFields[T]
  ? [fields?: FurErrorFields[T], options?: { cause?: unknown }]
  : [fields: FurErrorFields[T], options?: { cause?: unknown }];

export class FurError<T extends FurErrorTag = FurErrorTag> extends Error {
  readonly tag: T;
  readonly fields: FurErrorFields[T];
  constructor(tag: T, message: string, ...[fields, options]: FieldsArgs<T>) {
    super(message, options);
    this.tag = tag;
    this.fields = (fields ?? {}) as FurErrorFields[T];
    this.name = `FurError(${tag})`;
  }
}

/** Any FurError, as a union over tags: comparing its `tag` narrows its `fields`. */
export type AnyFurError = { [T in FurErrorTag]: FurError<T> }[FurErrorTag];

/** Narrows to a FurError (a union over tags), or to one tag's FurError with its fields. */
export function isFurError(e: unknown): e is AnyFurError;
export function isFurError<T extends FurErrorTag>(e: unknown, tag: T): e is FurError<T>;
export function isFurError(e: unknown, tag?: FurErrorTag): boolean {
  return e instanceof FurError && (tag === undefined || e.tag === tag);
}

/** for the `default` of a switch over tags: a tag the switch forgot does not compile */
export function unreachable(tag: never): never {
  throw new Error(`unhandled error tag ${String(tag)}`);
}

/**
 * The destination-side facts of any FurError (its server's code and status, where): for tags
 * other than a destination's, each reads as absent — which is what callers deciding on an S3
 * or FTP code want.
 */
export function remoteFields(e: FurError): RemoteFields {
  return e.fields as RemoteFields;
}
