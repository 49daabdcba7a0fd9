/**
 * An S3 store that lacks what some S3 look-alikes lack, for the unit tier: an HTTPS proxy in
 * front of fur's in-process S3 server that answers chosen operations itself, the way those
 * stores do, and relays everything else unchanged (signatures stay valid: the Host header and
 * the request pass through as they are).
 *
 * The answers copy the stores the interop tier runs for real:
 *  - s3rver: ListParts, AbortMultipartUpload, ListObjectVersions → 405 MethodNotAllowed;
 *    ListMultipartUploads → 501 NotImplemented
 *  - fauxqs: ListParts → 404 NoSuchKey (it reads the request as GetObject); ListObjectVersions and
 *    ListMultipartUploads → a plain object listing (it reads them as ListObjects)
 */
import { randomBytes } from 'node:crypto';
import { request, createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { S3Server } from './s3-server.js';

export type Lacking = 'ListParts' | 'ListMultipartUploads' | 'AbortMultipartUpload' | 'ListObjectVersions';
/** how the store answers an operation it lacks */
export type Answer = 'MethodNotAllowed' | 'NotImplemented' | 'NoSuchKey' | 'plain-listing';

export const S3RVER_LIKE: Partial<Record<Lacking, Answer>> = {
  ListParts: 'MethodNotAllowed', AbortMultipartUpload: 'MethodNotAllowed', ListObjectVersions: 'MethodNotAllowed', ListMultipartUploads: 'NotImplemented',
};
export const FAUXQS_LIKE: Partial<Record<Lacking, Answer>> = {
  ListParts: 'NoSuchKey', ListObjectVersions: 'plain-listing', ListMultipartUploads: 'plain-listing',
};

export interface LimitedS3 {
  /** the proxy's endpoint: give this to fur */
  endpoint: string;
  /** operations answered by the proxy, in order */
  answered: { op: Lacking; answer: Answer }[];
  close(): Promise<void>;
}

function lacking(method: string, path: string, q: URLSearchParams): Lacking | undefined {
  const hasKey = path.split('/').filter(Boolean).length > 1;
  if (method === 'GET' && hasKey && q.has('uploadId')) return 'ListParts';
  if (method === 'DELETE' && hasKey && q.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'GET' && !hasKey && q.has('uploads')) return 'ListMultipartUploads';
  if (method === 'GET' && !hasKey && q.has('versions')) return 'ListObjectVersions';
  return undefined;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startLimitedS3(backend: S3Server, answers: Partial<Record<Lacking, Answer>>): Promise<LimitedS3> {
  const target = new URL(backend.endpoint);
  const answered: LimitedS3['answered'] = [];
  const reply = (res: ServerResponse, status: number, xml: string) => {
    res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': randomBytes(8).toString('hex') });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const op = lacking(req.method ?? 'GET', url.pathname, url.searchParams);
    const answer = op ? answers[op] : undefined;
    if (op && answer) {
      answered.push({ op, answer });
      req.resume();
      const bucket = decodeURIComponent(url.pathname.split('/')[1] ?? '');
      const error = (status: number, code: string, message: string) => reply(res, status, `<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
      if (answer === 'MethodNotAllowed') return error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
      if (answer === 'NotImplemented') return error(501, 'NotImplemented', 'A parameter you provided implies functionality that is not implemented');
      if (answer === 'NoSuchKey') return error(404, 'NoSuchKey', 'The specified key does not exist.');
      const prefix = url.searchParams.get('prefix') ?? '';
      const contents = backend.keys(bucket).filter((k) => k.startsWith(prefix)).map((k) => `<Contents><Key>${esc(k)}</Key><Size>0</Size></Contents>`).join('');
      return reply(res, 200, `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${esc(bucket)}</Name><Prefix>${esc(prefix)}</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
    }
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, ca: backend.certificate!.cert }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  };
  const server: Server = createServer({ cert: backend.certificate!.cert, key: backend.certificate!.key }, handle);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `https://127.0.0.1:${port}`,
    answered,
    close: () => new Promise<void>((res) => { server.closeAllConnections(); server.close(() => res()); }),
  };
}
