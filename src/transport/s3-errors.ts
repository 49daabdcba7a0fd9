/** S3 (and S3-compatible) failures as FurErrors with one actionable line each. */
import { FurError } from '../errors.js';
import { certificateError } from './ftps-tls.js';

export interface S3Op {
  /** what fur was doing: `upload`, `list`, `read` */
  op: string;
  bucket: string;
  key: string;
  /** endpoint, when not AWS's own, for messages about the connection */
  endpoint?: string;
}

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
  $retryable?: unknown;
}

const NETWORK = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'EAI_AGAIN', 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC', 'ERR_HTTP2_STREAM_ERROR']);

export function s3Error(e: unknown, ctx: S3Op): FurError {
  if (e instanceof FurError) return e;
  const err = (e ?? {}) as SdkError & NodeJS.ErrnoException;
  const where = `s3://${ctx.bucket}/${ctx.key}`;
  const fields = { bucket: ctx.bucket, key: ctx.key, op: ctx.op, endpoint: ctx.endpoint };
  const cert = certificateError(e, ctx.endpoint ?? 'the S3 endpoint', fields);
  if (cert) return cert;
  const status = err.$metadata?.httpStatusCode;
  const code = err.Code ?? (err.name && err.name !== 'Error' && err.name !== 'S3ServiceException' ? err.name : undefined) ?? err.code;
  const text = (err.message ?? String(e)).replace(/\s+/g, ' ').trim();
  const f = { ...fields, code, status };
  switch (code) {
    case 'NoSuchBucket':
      return new FurError('not-found', `bucket '${ctx.bucket}' does not exist${ctx.endpoint ? ` at ${ctx.endpoint}` : ''}; create it first (fur does not create buckets)`, f, { cause: e });
    case 'InvalidAccessKeyId': case 'SignatureDoesNotMatch': case 'InvalidToken': case 'ExpiredToken': case 'TokenRefreshRequired': case 'InvalidClientTokenId':
      return new FurError('auth-failed', `${where}: the credentials were refused (${code}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the profile (--profile, AWS_PROFILE)`, f, { cause: e });
    case 'CredentialsProviderError':
      return new FurError('auth-failed', `${where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile of ~/.aws/credentials with --profile (${text})`, f, { cause: e });
    case 'AccessDenied': case 'AllAccessDisabled': case 'AccountProblem': case 'Forbidden':
      return new FurError('permission-denied', `${where}: access denied for ${ctx.op}; the credentials lack the permission (${code}${status ? ` ${status}` : ''})`, f, { cause: e });
    case 'NoSuchKey': case 'NotFound':
      return new FurError('not-found', `${where}: no such object (${ctx.op})`, f, { cause: e });
    case 'NoSuchUpload':
      return new FurError('upload-lost', `${where}: the pending multipart upload is gone (completed, aborted, or removed by a lifecycle rule)`, f, { cause: e });
    case 'AuthorizationHeaderMalformed': case 'PermanentRedirect': case 'IllegalLocationConstraintException':
      return new FurError('wrong-region', `${where}: the bucket lives in another region (${text}); pass --region`, f, { cause: e });
    case 'BadDigest': case 'InvalidDigest': case 'XAmzContentSHA256Mismatch': case 'IncompleteBody': case 'RequestTimeout':
      // bytes damaged or cut on the way: sending them again is the cure
      return new FurError('remote-write-failed', `${where}: the server rejected the bytes of ${ctx.op} (${code}: ${text})`, f, { cause: e });
    case 'EntityTooSmall': case 'EntityTooLarge': case 'InvalidPart': case 'InvalidPartOrder': case 'TooManyParts':
      return new FurError('remote-refused', `${where}: ${ctx.op} refused (${code}: ${text})`, f, { cause: e });
    case 'QuotaExceeded': case 'XMinioStorageFull': case 'StorageFull':
      return new FurError('remote-write-failed', `${where}: ${ctx.op} failed (${code}): the storage is full or over quota`, f, { cause: e });
    case 'NotImplemented':
      return new FurError('remote-refused', `${where}: the server does not implement what ${ctx.op} needs (${text})`, f, { cause: e });
    case 'ECONNREFUSED':
      return new FurError('connect-failed', `${ctx.endpoint ?? where}: connection refused; is the S3 endpoint right (--endpoint)?`, f, { cause: e });
    case 'ENOTFOUND':
      return new FurError('connect-failed', `${ctx.endpoint ?? where}: cannot resolve the endpoint's host (ENOTFOUND); check the host name in --endpoint`, f, { cause: e });
  }
  if (code && NETWORK.has(code) || err.name === 'TimeoutError' || /socket hang up|ECONNRESET|timed? ?out|aborted/i.test(text) && status === undefined) {
    return new FurError('connection-lost', `${where}: ${ctx.op}: connection lost (${code ?? text})`, f, { cause: e });
  }
  if (status !== undefined && status >= 500 || code === 'SlowDown' || code === 'InternalError' || code === 'ServiceUnavailable') {
    return new FurError('remote-failed', `${where}: ${ctx.op} failed on the server (${code ?? status}: ${text})`, f, { cause: e });
  }
  if (status === 403) return new FurError('permission-denied', `${where}: access denied for ${ctx.op} (403${code ? ` ${code}` : ''})`, f, { cause: e });
  if (status === 404) return new FurError('not-found', `${where}: not found (${ctx.op})`, f, { cause: e });
  return new FurError('remote-refused', `${where}: ${ctx.op} failed (${code ?? status ?? 'error'}: ${text})`, f, { cause: e });
}
