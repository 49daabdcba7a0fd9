import { userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FurError } from '../errors.js';

/**
 * Where a destination lives, parsed from the text a person typed. `display` is the canonical,
 * secret-free form used in every message about this destination.
 */
export type DestinationUrl =
  | { scheme: 'file'; path: string; display: string }
  | SshLikeUrl<'sftp'>
  | SshLikeUrl<'ftps'>
  | { scheme: 's3'; bucket: string; prefix: string; params: Record<string, string>; display: string };

export interface SshLikeUrl<S extends 'sftp' | 'ftps'> {
  scheme: S;
  user: string;
  host: string;
  port: number;
  /**
   * Absolute (`/data/run1`) or relative to the login directory (`data/run1`, from
   * `sftp://u@h/~/data/run1`), following the sftp URI convention used by OpenSSH.
   */
  path: string;
  display: string;
  /**
   * false when the URL names no user (sftp: then `user` is the local user, as for ssh, and
   * OpenSSH's configuration may name another one)
   */
  userGiven?: false;
  /** false when the URL names no port (sftp: OpenSSH's configuration may name one) */
  portGiven?: false;
}

const EXPECTED = 'expected sftp://user@host[:port]/path or file:///path';
const DEFAULT_PORT = { sftp: 22, ftps: 21 } as const;
// Two letters at least, so that a Windows drive (`C:\data`) is read as a plain path.
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):/;

function bad(text: string, why: string): FurError<'bad-url'> {
  const shown = maskPassword(text);
  return new FurError('bad-url', `destination URL '${shown}' does not parse: ${why}; ${EXPECTED}`, { url: shown });
}

/** `scheme://user:secret@host` → `scheme://user:***@host`: a message must never repeat a password */
export function maskPassword(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@:]*):[^@/]*@/, '$1:***@');
}

/** Parse a destination URL or a plain local path (which means a file destination). */
export function parseDestinationUrl(text: string): DestinationUrl {
  const trimmed = text.trim();
  if (trimmed === '') throw bad(text, 'it is empty');
  const m = SCHEME.exec(trimmed);
  if (!m) return fileUrl(resolve(trimmed));
  const scheme = m[1].toLowerCase();
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw bad(text, 'it is not a valid URL');
  }
  switch (scheme) {
    case 'file': return parseFile(text, url);
    case 'sftp': case 'ftps': return parseSshLike(text, url, scheme);
    case 's3': return parseS3(text, url);
    default: throw bad(text, `scheme '${scheme}:' is not supported (sftp, ftps, s3, file)`);
  }
}

function fileUrl(path: string): DestinationUrl {
  return { scheme: 'file', path, display: path };
}

function parseFile(text: string, url: URL): DestinationUrl {
  if (url.hostname !== '' && url.hostname !== 'localhost') {
    throw bad(text, `file URLs name a local path, not host '${url.hostname}' (mount the share and use its path)`);
  }
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (e) {
    throw bad(text, (e as Error).message);
  }
  if (!isAbsolute(path)) throw bad(text, 'the path is not absolute');
  return fileUrl(path);
}

function parseSshLike<S extends 'sftp' | 'ftps'>(text: string, url: URL, scheme: S): SshLikeUrl<S> {
  if (url.password !== '') {
    // Refuse rather than silently use it: URLs end up in logs, shell history and process lists.
    throw bad(text, 'it contains a password; remove it and name an environment variable that holds it with --password-env');
  }
  if (url.hostname === '') throw bad(text, 'the host is missing');
  if (url.search !== '' || url.hash !== '') throw bad(text, 'query strings and fragments are not used');
  const user = url.username !== '' ? decode(text, url.username) : localUser();
  const port = url.port !== '' ? Number(url.port) : DEFAULT_PORT[scheme];
  if (!(port > 0)) throw bad(text, 'port 0 is not a port');
  // ssh2 and net want a bare IPv6 address; the brackets stay in the display form.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let path = decode(text, url.pathname || '/');
  if (path === '/~' || path.startsWith('/~/')) path = path.slice(3) || '.';
  const portPart = port === DEFAULT_PORT[scheme] ? '' : `:${port}`;
  // an sftp URL without a user names it as ssh would be told: the user may come from ~/.ssh/config
  const userPart = scheme === 'sftp' && url.username === '' ? '' : `${encodeURIComponent(user)}@`;
  const display = `${scheme}://${userPart}${url.hostname}${portPart}${url.pathname || '/'}`;
  const implied = scheme !== 'sftp' ? {} : { ...(url.username === '' ? { userGiven: false as const } : {}), ...(url.port === '' ? { portGiven: false as const } : {}) };
  return { scheme, user, host, port, path, display, ...implied };
}

function parseS3(text: string, url: URL): DestinationUrl {
  const bucket = url.hostname;
  if (url.username !== '' || url.password !== '') {
    throw bad(text, 'credentials do not belong in an s3 URL; use the usual AWS environment or profile');
  }
  // S3's own naming rules; checking here turns a late "NoSuchBucket" into an early, local message.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw bad(text, `'${bucket}' is not a valid bucket name (3-63 lowercase letters, digits, dots, hyphens)`);
  }
  if (url.port !== '') throw bad(text, 'an s3 bucket has no port; pass a custom endpoint as ?endpoint=https://host:port');
  const prefix = decode(text, url.pathname).replace(/^\/+/, '');
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  return { scheme: 's3', bucket, prefix, params, display: `s3://${bucket}/${prefix}` };
}

function decode(text: string, part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw bad(text, `'${part}' has a broken %-escape`);
  }
}

function localUser(): string {
  // Like ssh: without user@, log in as the local user.
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? 'root';
  }
}
