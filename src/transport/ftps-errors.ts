/**
 * FTP replies and socket failures as FurErrors. FTP reply codes are coarse (550 means "no such
 * file" on one server and "permission denied" on another), so messages quote the server's own
 * text beside what fur was doing.
 */
import { FTPError } from 'basic-ftp';
import { FurError } from '../errors.js';
import { certificateError } from './ftps-tls.js';

export interface FtpOp {
  /** what fur was doing: `rename`, `upload`, `list` */
  op: string;
  path: string;
  /** the destination, for messages */
  url: string;
}

/** Failures of the connection rather than of the request: a new connection may succeed. */
export function isConnectionError(e: unknown): boolean {
  if (e instanceof FTPError) return e.code === 421 || e.code === 425 || e.code === 426;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC'].includes(code)) return true;
  const m = String(err?.message ?? '');
  return /closed|FIN packet|Timeout|socket hang up|not connected|ended by the other party|premature/i.test(m);
}

export function ftpError(e: unknown, ctx: FtpOp): FurError {
  if (e instanceof FurError) return e;
  const fields = { url: ctx.url, path: ctx.path, op: ctx.op };
  const cert = certificateError(e, ctx.url, fields);
  if (cert) return cert;
  const where = `${ctx.op} ${ctx.path} on ${ctx.url}`;
  if (e instanceof FTPError) {
    const text = e.message.replace(/^\d{3}[ -]?/, '').trim();
    const f = { ...fields, code: e.code, reply: text };
    if ([450, 451, 550].includes(e.code) && /no such|not found|does not exist|doesn't exist|cannot find|can't find|ENOENT/i.test(text)) {
      return new FurError('not-found', `${where}: no such file or directory (${e.code} ${text})`, f, { cause: e });
    }
    switch (e.code) {
      case 421: case 425: case 426:
        return new FurError('connection-lost', `${where}: the server dropped the transfer (${e.code} ${text})`, f, { cause: e });
      case 530:
        return new FurError('auth-failed', `${where}: not logged in (${e.code} ${text})`, f, { cause: e });
      case 532: case 533:
        return new FurError('permission-denied', `${where}: permission denied (${e.code} ${text})`, f, { cause: e });
      case 452: case 552:
        return new FurError('remote-write-failed', `${where} failed (${e.code} ${text}): the server is out of space or over quota; free space or raise the quota`, f, { cause: e });
      case 500: case 502: case 504:
        return new FurError('ftp-unsupported', `${where}: the server does not support this command (${e.code} ${text})`, f, { cause: e });
      case 553:
        return new FurError('permission-denied', `${where}: the server refuses this file name or location (${e.code} ${text})`, f, { cause: e });
      case 550: case 450:
        if (/denied|permission|not permitted|EACCES|EPERM/i.test(text)) {
          return new FurError('permission-denied', `${where}: permission denied (${e.code} ${text}); check the account's rights on that directory`, f, { cause: e });
        }
        return new FurError('ftp-refused', `${where}: the server refused (${e.code} ${text})`, f, { cause: e });
      default:
        // 4xx are the server's "try again later"; 5xx are answers
        return new FurError(e.code >= 400 && e.code < 500 ? 'remote-failed' : 'ftp-refused', `${where}: the server refused (${e.code} ${text})`, f, { cause: e });
    }
  }
  const err = e as NodeJS.ErrnoException;
  if (isConnectionError(e)) {
    return new FurError('connection-lost', `${where}: connection lost (${err?.code ?? err?.message ?? String(e)})`, { ...fields, code: err?.code }, { cause: e });
  }
  return new FurError('remote-failed', `${where} failed: ${err?.message ?? String(e)}`, { ...fields, code: err?.code }, { cause: e });
}
