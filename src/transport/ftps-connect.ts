/**
 * One FTPS control connection: TCP (or implicit TLS), AUTH TLS, login, binary mode, encrypted
 * data connections. Each step is taken separately so a failure says which step failed: a server
 * without TLS is refused before a password is sent, and a refused certificate is told apart from
 * a refused login.
 */
import { Client, FTPError } from 'basic-ftp';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type ConnectionOptions, type PeerCertificate, type SecureContext } from 'node:tls';
import { FurError } from '../errors.js';
import { deferDataTls, type DataTlsOrder } from './ftps-data.js';
import { ftpError, isConnectionError } from './ftps-errors.js';
import type { SshLikeUrl } from './url.js';

export interface FtpsConnectOptions {
  /** name of an environment variable holding the password (the password itself never appears in options) */
  passwordEnv?: string;
  /** TLS from the first byte (legacy "implicit FTPS", usually port 990) instead of AUTH TLS on port 21 */
  implicitTls?: boolean;
  /** certificates to trust besides the system's (see trustedCertificates) */
  ca?: string[];
  /** the TLS context made from `ca` (trustContext): made once, not for every data connection */
  secureContext?: SecureContext;
  /** control socket inactivity limit, ms (default 30 s) */
  timeoutMs?: number;
  /** limit for TCP connect, TLS and login together, ms (--connect-timeout; default: only the inactivity limit) */
  connectTimeoutMs?: number;
  /** what the destination learnt about its server's data connections (see ftps-data.ts) */
  dataTls?: DataTlsOrder;
}

export const IMPLICIT_TLS_PORT = 990;

/** The port to use: an implicit-TLS server listens on 990 unless the URL names another port. */
export function ftpsPort(target: SshLikeUrl<'ftps'>, implicit: boolean): number {
  return implicit && target.port === 21 ? IMPLICIT_TLS_PORT : target.port;
}

/**
 * A TLS context trusting `ca`. Given as `ca` instead, every data connection would parse the whole
 * list again (the system roots and the extra ones): ~20 ms each, measured against vsftpd on
 * loopback, which made each file transfer take 20 ms longer.
 */
export function trustContext(ca?: string[]): SecureContext | undefined {
  return ca ? createSecureContext({ ca, minVersion: 'TLSv1.2' }) : undefined;
}

export function tlsOptions(target: SshLikeUrl<'ftps'>, ca?: string[], secureContext = trustContext(ca)): ConnectionOptions {
  const o: ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2' };
  if (secureContext) o.secureContext = secureContext;
  // SNI takes names only; an address is still checked against the certificate's IP entries
  if (!isIP(target.host)) o.servername = target.host;
  o.checkServerIdentity = (_host: string, cert: PeerCertificate) => checkServerIdentity(target.host, cert);
  return o;
}

/**
 * basic-ftp's Client without its progress reporting: fur keeps its own counts, and the reporter's
 * timer (started whenever a transfer starts, ref'd) outlives a transfer cut short — as a ranged
 * read is, by closing its connection — and would keep the process alive.
 */
class FurFtpClient extends Client {
  constructor(timeoutMs: number, dataTls: DataTlsOrder) {
    super(timeoutMs);
    this._progressTracker.start = () => {};
    deferDataTls(this, dataTls);
  }
}

export async function connectFtps(target: SshLikeUrl<'ftps'>, opts: FtpsConnectOptions = {}): Promise<Client> {
  const port = ftpsPort(target, opts.implicitTls ?? false);
  const password = passwordOf(target, opts);
  const client = new FurFtpClient(opts.timeoutMs ?? 30_000, opts.dataTls ?? {});
  const limit = opts.connectTimeoutMs;
  // a server that keeps the connection alive without ever finishing the login (one byte a
  // minute, a stalled TLS handshake) would never trip the inactivity limit
  let timedOut = false;
  const timer = limit === undefined ? undefined : setTimeout(() => { timedOut = true; client.close(); }, limit);
  try {
    await handshake(client, target, port, password, opts);
    return client;
  } catch (e) {
    if (!timedOut) throw e;
    throw new FurError('connect-failed',
      `${target.display}: no answer from ${target.host}:${port} within ${limit! / 1000} s (connect, TLS and login); check the host, the port and any firewall in between (--connect-timeout to wait longer)`,
      { url: target.display, host: target.host, port, code: 'ETIMEDOUT' }, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** TCP (or implicit TLS), AUTH TLS, login, binary mode, protected data connections. */
async function handshake(client: Client, target: SshLikeUrl<'ftps'>, port: number, password: string, opts: FtpsConnectOptions): Promise<void> {
  const url = target.display;
  const tls = tlsOptions(target, opts.ca, opts.secureContext ?? trustContext(opts.ca));
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      client.close();
      throw connectError(e, what, target, port);
    }
  };
  if (opts.implicitTls) {
    await step('connect', () => client.connectImplicitTLS(target.host, port, tls));
  } else {
    await step('connect', () => client.connect(target.host, port));
    try {
      await client.useTLS(tls);
    } catch (e) {
      client.close();
      if (e instanceof FTPError) {
        throw new FurError('tls-unavailable',
          `${url}: the server does not offer TLS (AUTH TLS answered ${e.code} ${e.message.replace(/^\d{3}\s*/, '')}); fur sends no password in clear text — enable FTPS on the server, or use --implicit-tls if it only speaks implicit TLS`,
          { url, code: e.code }, { cause: e });
      }
      throw connectError(e, 'TLS handshake', target, port);
    }
  }
  try {
    await client.login(target.user, password);
  } catch (e) {
    client.close();
    if (e instanceof FTPError && (e.code === 530 || e.code === 430 || e.code === 332)) {
      const how = opts.passwordEnv ? `the password in $${opts.passwordEnv}` : 'no password';
      throw new FurError('auth-failed', `${url}: login as ${target.user} refused (${e.code} ${e.message.replace(/^\d{3}\s*/, '')}) with ${how}; check the user name and password`,
        { url, user: target.user, code: e.code }, { cause: e });
    }
    throw connectError(e, 'login', target, port);
  }
  await step('binary mode', () => client.send('TYPE I'));
  try {
    await client.send('PBSZ 0');
    await client.send('PROT P');
  } catch (e) {
    client.close();
    if (e instanceof FTPError) {
      throw new FurError('tls-unavailable', `${url}: the server refuses to encrypt data connections (PROT P answered ${e.code} ${e.message.replace(/^\d{3}\s*/, '')}); fur never sends data in clear text`,
        { url, code: e.code }, { cause: e });
    }
    throw connectError(e, 'PROT P', target, port);
  }
}

function passwordOf(target: SshLikeUrl<'ftps'>, opts: FtpsConnectOptions): string {
  if (!opts.passwordEnv) {
    if (target.user === 'anonymous' || target.user === 'ftp') return 'fur@';
    throw new FurError('auth-failed', `${target.display}: no password for ${target.user}; name the environment variable that holds it with --password-env VAR`,
      { url: target.display, user: target.user });
  }
  const value = process.env[opts.passwordEnv];
  if (value === undefined) {
    throw new FurError('auth-failed', `${target.display}: environment variable ${opts.passwordEnv} (--password-env) is not set`, { url: target.display, variable: opts.passwordEnv });
  }
  return value;
}

function connectError(e: unknown, what: string, target: SshLikeUrl<'ftps'>, port: number): FurError {
  const url = target.display;
  const mapped = ftpError(e, { op: what, path: '', url });
  if (mapped.tag === 'tls-certificate') return mapped;
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOTFOUND' || err?.code === 'EAI_AGAIN') {
    return new FurError('connect-failed', `${url}: cannot resolve host ${target.host} (${err.code}); check the host name's spelling and DNS`, { url, host: target.host, code: err.code }, { cause: e });
  }
  if (err?.code === 'ECONNREFUSED') {
    return new FurError('connect-failed', `${url}: connection refused by ${target.host}:${port}; is an FTP server listening there?`, { url, host: target.host, port, code: err.code }, { cause: e });
  }
  if (isConnectionError(e) || err?.code !== undefined) {
    return new FurError('connect-failed', `${url}: ${what} failed (${err?.code ?? err?.message})`, { url, host: target.host, port, code: err?.code }, { cause: e });
  }
  if (e instanceof FTPError) {
    return new FurError('connect-failed', `${url}: ${what} refused (${e.code} ${e.message.replace(/^\d{3}\s*/, '')})`, { url, code: e.code }, { cause: e });
  }
  return new FurError('connect-failed', `${url}: ${what} failed: ${(e as Error)?.message ?? String(e)}`, { url }, { cause: e });
}
