import { createHash, timingSafeEqual } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
// ssh2 is CommonJS: its classes are reachable through the default export only.
import ssh2, { type AuthContext, type Connection, type ParsedKey } from 'ssh2';
import { FurError } from '../errors.js';
import { formatKnownHostsLine } from '../transport/known-hosts.js';
import { advertiseExtensions } from './sftp-server-ext.js';
import { emptyStats, SftpService, type ServerStats } from './sftp-server-fs.js';

export interface SftpServerOptions {
  /** local directory served as `/` */
  root: string;
  /** accepted password (for any user unless `username` is set) */
  password?: string;
  /** accepted public keys, OpenSSH one-line format (`ssh-ed25519 AAAA… comment`) */
  authorizedKeys?: string[];
  /** the only user name accepted; default any */
  username?: string;
  /** refuse every change with PERMISSION_DENIED */
  readOnly?: boolean;
  /** announce posix-rename@openssh.com and fsync@openssh.com (default true) */
  extensions?: boolean;
  /** emulate a full disk: WRITE fails like ENOSPC once this many bytes were written */
  writeQuotaBytes?: number;
  /** host private key(s) (OpenSSH format); default a fresh ed25519 key */
  hostKey?: string | string[];
}

export interface SftpServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** known_hosts line for this server's (first) host key: `[127.0.0.1]:port ssh-ed25519 AAAA…` */
  readonly hostKeyLine: string;
  /** known_hosts lines for every host key, in the order given */
  readonly hostKeyLines: string[];
  /** the (first) host public key, SSH wire format */
  readonly hostKey: Buffer;
  /** `sftp://user@127.0.0.1:port/path` */
  url(user: string, path?: string): string;
  /** counters over all sessions since start (requests pending, writes, fsyncs) */
  readonly stats: ServerStats;
  /** cut every client connection at the TCP level, as a network failure would */
  dropConnections(): void;
  close(): Promise<void>;
}

/**
 * An SFTP server in this process, on a free loopback port, serving a local directory. It backs
 * `fur demo` and the transport tests. Built on ssh2's server, so it takes writes of ~32 KiB per
 * request only: right for checking behaviour, not for measuring speed (use OpenSSH for that).
 */
export async function startSftpServer(opts: SftpServerOptions): Promise<SftpServer> {
  const root = await realpath(opts.root).catch((e) => {
    throw new FurError('not-found', `cannot serve ${opts.root}: ${(e as Error).message}`, { path: opts.root }, { cause: e });
  });
  if (!(await stat(root)).isDirectory()) {
    throw new FurError('not-a-directory', `cannot serve ${opts.root}: not a directory`, { path: opts.root });
  }
  const keys = (opts.authorizedKeys ?? []).map((line) => {
    const k = ssh2.utils.parseKey(line);
    if (k instanceof Error) {
      throw new FurError('bad-key', `authorized key '${line.slice(0, 40)}…' does not parse: ${k.message}`, {});
    }
    return k;
  });
  if (opts.password === undefined && keys.length === 0) {
    throw new FurError('bad-config', 'startSftpServer needs a password or authorizedKeys, or nobody can log in', {});
  }
  const hostPrivate = opts.hostKey === undefined ? [generateEd25519().private] : [opts.hostKey].flat();
  const hostPublic = hostPrivate.map((k) => {
    const parsed = ssh2.utils.parseKey(k);
    if (parsed instanceof Error) throw new FurError('bad-key', `host key does not parse: ${parsed.message}`, {});
    return parsed.getPublicSSH();
  });

  const stats = emptyStats();
  const quota = opts.writeQuotaBytes !== undefined ? { left: opts.writeQuotaBytes } : undefined;
  const ssh = new ssh2.Server({ hostKeys: hostPrivate }, (client: Connection) => {
    client.on('error', () => {}); // a client that vanishes is its own business
    client.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && !ctx.signature) stats.keyQueries++;
      authenticate(ctx, opts, keys);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp) => {
          const sftp = acceptSftp();
          if (opts.extensions ?? true) {
            advertiseExtensions(sftp, { 'posix-rename@openssh.com': '1', 'fsync@openssh.com': '1' });
          }
          new SftpService(sftp, { root, readOnly: opts.readOnly ?? false, quota, stats });
        });
      });
    });
  });

  // A plain TCP server in front, so connections can be cut (dropConnections) through public API.
  const sockets = new Set<Socket>();
  const tcp = createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    ssh.injectSocket(sock);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (tcp.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    hostKey: hostPublic[0],
    stats,
    hostKeyLine: formatKnownHostsLine('127.0.0.1', port, hostPublic[0]),
    hostKeyLines: hostPublic.map((k) => formatKnownHostsLine('127.0.0.1', port, k)),
    url: (user, path = '/') => `sftp://${encodeURIComponent(user)}@127.0.0.1:${port}${path.startsWith('/') ? '' : '/'}${path}`,
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      tcp.close(() => resolve());
    }),
  };
}

/**
 * A fresh ed25519 key pair in OpenSSH format. ssh2's generator drops a leading zero byte of the
 * public key (about one key in 256), which makes the key unreadable by ssh2 itself; such keys
 * are thrown away and generated again.
 */
export function generateEd25519(passphrase?: string): { private: string; public: string } {
  for (let attempt = 0; ; attempt++) {
    const pair = passphrase === undefined
      ? ssh2.utils.generateKeyPairSync('ed25519')
      : ssh2.utils.generateKeyPairSync('ed25519', { passphrase, cipher: 'aes256-ctr', rounds: 4 } as never);
    const priv = ssh2.utils.parseKey(pair.private, passphrase);
    const pub = ssh2.utils.parseKey(pair.public);
    if (!(priv instanceof Error) && !(pub instanceof Error)) return pair;
    if (attempt >= 20) throw new FurError('bad-key', 'ssh2 failed to generate a readable ed25519 key 20 times in a row', {});
  }
}

function authenticate(ctx: AuthContext, opts: SftpServerOptions, keys: ParsedKey[]): void {
  const offered: Array<'password' | 'publickey'> = [];
  if (opts.password !== undefined) offered.push('password');
  if (keys.length > 0) offered.push('publickey');
  if (opts.username !== undefined && ctx.username !== opts.username) return ctx.reject(offered);
  if (ctx.method === 'password' && opts.password !== undefined && sameSecret(ctx.password, opts.password)) {
    return ctx.accept();
  }
  if (ctx.method === 'publickey') {
    const key = keys.find((k) => k.getPublicSSH().equals(ctx.key.data));
    // Without a signature the client only asks whether the key would do; with one, check it.
    if (key && (!ctx.signature || key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo))) return ctx.accept();
  }
  ctx.reject(offered);
}

/** Compare without leaking the length or content through timing. */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}
