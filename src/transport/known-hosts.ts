import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FurError } from '../errors.js';

/**
 * OpenSSH's known_hosts file: one host key per line, `patterns keytype base64 [comment]`, where
 * patterns are comma-separated names (`host`, `[host]:port`, wildcards, `!negations`) or a single
 * hashed name `|1|salt|hmac-sha1(salt, name)`. Lines may start with `@revoked` or
 * `@cert-authority`; fur does not do certificates, so CA lines are skipped.
 */
export interface KnownHostEntry {
  line: number;
  marker?: 'revoked' | 'cert-authority';
  hosts: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyVerdict =
  | { status: 'known'; line: number }
  | { status: 'unknown'; knownTypes: string[] }
  | { status: 'changed'; line: number; keyType: string }
  | { status: 'revoked'; line: number };

/** The name a host is filed under: bare for port 22, `[host]:port` otherwise (as OpenSSH does). */
export function hostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** The key type inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

export function formatKnownHostsLine(host: string, port: number, key: Buffer): string {
  return `${hostName(host, port)} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === '' || fields[0].startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!.slice(1);
      if (m !== 'revoked' && m !== 'cert-authority') return;
      marker = m;
    }
    if (fields.length < 3) return;
    const [hosts, keyType, b64] = fields;
    out.push({ line: i + 1, marker, hosts, keyType, key: Buffer.from(b64, 'base64') });
  });
  return out;
}

/** Does this entry's host field name `name` (already in `[host]:port` form where needed)? */
export function entryMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let matched = false;
  for (const pattern of hosts.toLowerCase().split(',')) {
    const negated = pattern.startsWith('!');
    if (!wildcard(negated ? pattern.slice(1) : pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function wildcard(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * Judge a host key the way OpenSSH does: a matching line with the same key means known; a
 * matching line of the same key type with another key means changed (possible interception).
 */
export function judgeHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = hostName(host, port);
  const type = keyTypeOf(key);
  let known: number | undefined;
  let changed: { line: number; keyType: string } | undefined;
  const knownTypes = new Set<string>();
  for (const e of entries) {
    if (e.marker === 'cert-authority' || !entryMatches(e.hosts, name)) continue;
    if (e.marker === 'revoked') {
      if (e.key.equals(key)) return { status: 'revoked', line: e.line };
      continue;
    }
    knownTypes.add(e.keyType);
    if (e.key.equals(key)) known ??= e.line;
    else if (e.keyType === type) changed ??= { line: e.line, keyType: e.keyType };
  }
  if (known !== undefined) return { status: 'known', line: known };
  if (changed) return { status: 'changed', ...changed };
  return { status: 'unknown', knownTypes: [...knownTypes] };
}

/** Read a known_hosts file; a missing file is an empty one (first connection on a fresh account). */
export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new FurError('known-hosts-unreadable',
      `cannot read known_hosts file ${file}: ${(e as Error).message}; fix its permissions or pass another file with --known-hosts`,
      { file }, { cause: e });
  }
}

/** Append a host key, creating the file (mode 600, directory 700, like ssh) when needed. */
export async function appendHostKey(file: string, host: string, port: number, key: Buffer): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    let prefix = '';
    const current = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    // Never glue the new entry onto a last line that lacks its newline.
    if (current.length > 0 && !current.endsWith('\n')) prefix = '\n';
    await appendFile(file, `${prefix}${formatKnownHostsLine(host, port, key)}\n`, { mode: 0o600 });
  } catch (e) {
    throw new FurError('known-hosts-unwritable',
      `cannot add the host key of ${hostName(host, port)} to ${file}: ${(e as Error).message}; fix its permissions or pass another file with --known-hosts`,
      { file, host, port }, { cause: e });
  }
}

/** Key types known_hosts records for a host (revoked and CA lines aside). */
export function knownKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  const name = hostName(host, port);
  const types = entries.filter((e) => e.marker === undefined && entryMatches(e.hosts, name)).map((e) => e.keyType);
  return [...new Set(types)];
}

/** Host key types ssh2 can verify; anything else in known_hosts cannot be asked for. */
const SSH2_HOST_KEY_TYPES = new Set([
  'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa', 'ssh-dss',
]);

/** Host key algorithms that produce keys of the given types, for putting known types first. */
export function algorithmsFor(keyTypes: string[]): string[] {
  const out: string[] = [];
  for (const t of keyTypes) {
    if (!SSH2_HOST_KEY_TYPES.has(t)) continue;
    if (t === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else out.push(t);
  }
  return out;
}

/** A host key that differs from the recorded one: refused, whatever the settings. */
export function hostKeyChangedError(name: string, offered: string, file: string, line: number | undefined, fields: Record<string, unknown>): FurError<'host-key-changed'> {
  const where = line === undefined ? file : `line ${line} of ${file}`;
  return new FurError('host-key-changed',
    `host key of ${name} changed (now ${offered}), which may mean someone is intercepting the connection; if the change is expected, delete ${where} (ssh-keygen -R '${name}' -f ${file})`,
    { ...fields, knownHosts: file, line });
}

/** A host known_hosts does not list, and no permission to record it. */
export function unknownHostKeyError(name: string, offered: string | undefined, file: string, fields: Record<string, unknown>): FurError<'unknown-host-key'> {
  return new FurError('unknown-host-key',
    `host ${name} is not in ${file}${offered ? ` (it offers ${offered})` : ''}; check its fingerprint with the server's administrator, then connect once with --accept-new-host-key or add it with ssh-keyscan`,
    { ...fields, knownHosts: file });
}
