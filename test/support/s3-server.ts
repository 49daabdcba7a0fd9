/**
 * An S3-compatible server in this process, over HTTPS (a certificate made on the spot) or HTTP,
 * for fur's tests: path-style requests signed with AWS Signature V4 (checked), objects and
 * multipart uploads kept in a local folder, per-part checksums verified, versioning, and the
 * faults fur must survive — refused credentials, access denied, parts failing, connections cut.
 *
 * Why fur has its own: s3rver 3.7 (the npm one, last released 2021) has no ListParts,
 * ListMultipartUploads, AbortMultipartUpload or versioning, which resuming and cleaning up a
 * multipart upload need; fauxqs needs Node ≥ 22.5. The interop tier checks what this server
 * stores with an independent client (Debian's awscli).
 *
 * Not S3: no virtual-hosted buckets, no ACLs or policies beyond `deny`, no presigned URLs.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeCertificate, type Certificate } from '../../harness/certificate.js';

export interface S3Credentials { accessKeyId: string; secretAccessKey: string }

export type S3Action = 'GetObject' | 'PutObject' | 'DeleteObject' | 'ListBucket' | 'AbortMultipartUpload' | 'ListMultipartUploads' | 'GetBucketVersioning' | 'PutBucketVersioning' | '*';

export interface DenyRule {
  action: S3Action;
  /** keys starting with this (default: all) */
  prefix?: string;
  /** only for this access key (default: all) */
  accessKeyId?: string;
  bucket?: string;
}

/** What a fault hook sees of a request. */
export interface S3RequestInfo {
  op: string;
  bucket: string;
  key: string;
  partNumber?: number;
  uploadId?: string;
}

/** 'error': 500 InternalError; 'drop': the connection is cut after half the body; 'reset': cut before reading. */
export type Fault = 'error' | 'drop' | 'reset' | undefined;

export interface S3ServerOptions {
  /** local folder for object and part bytes */
  root: string;
  /** accepted key pairs (default one fresh pair) */
  credentials?: S3Credentials[];
  /** buckets that exist from the start */
  buckets?: string[];
  /** HTTPS certificate (default: self-signed for localhost and 127.0.0.1); false = plain HTTP */
  certificate?: Certificate | false;
  /** smallest part but the last (default 5 MiB, as AWS) */
  minPartSize?: number;
  /**
   * honour If-None-Match / If-Match on PutObject as AWS does (default true); false overwrites
   * regardless, as stores that ignore the headers do
   */
  conditionalWrites?: boolean;
}

interface Version {
  versionId: string;
  deleteMarker: boolean;
  /** the bytes, in pieces (a completed multipart upload keeps its parts' files) */
  files: Piece[];
  size: number;
  etag: string;
  lastModified: Date;
  checksums: Record<string, string>;
  metadata: Record<string, string>;
  partsCount?: number;
}

interface Piece { path: string; size: number }

interface Bucket {
  name: string;
  versioning: 'Unversioned' | 'Enabled' | 'Suspended';
  objects: Map<string, Version[]>;
  created: Date;
}

interface Part { number: number; file: string; size: number; etag: string; checksums: Record<string, string>; lastModified: Date }

interface Upload {
  id: string;
  bucket: string;
  key: string;
  initiated: Date;
  checksumAlgorithm?: string;
  metadata: Record<string, string>;
  parts: Map<number, Part>;
}

export interface S3Server {
  /** `https://127.0.0.1:port` (or http://) */
  readonly endpoint: string;
  readonly certificate?: Certificate;
  readonly credentials: S3Credentials;
  readonly region: string;
  createBucket(name: string, opts?: { versioning?: boolean }): void;
  setVersioning(bucket: string, on: boolean): void;
  deny(rule: DenyRule): void;
  allowAll(): void;
  /** Called for every request; return a fault to inject one. */
  fault(hook: ((r: S3RequestInfo) => Fault) | undefined): void;
  /** keys of current objects (not delete markers) */
  keys(bucket: string): string[];
  /** every version of every key, delete markers included */
  versions(bucket: string): { key: string; versionId: string; deleteMarker: boolean }[];
  object(bucket: string, key: string): Promise<Buffer | undefined>;
  /** pending multipart uploads */
  uploads(bucket: string): { key: string; uploadId: string; parts: number[] }[];
  /** operations served, in order */
  readonly log: { op: string; key: string; status: number; partNumber?: number; range?: string }[];
  dropConnections(): void;
  close(): Promise<void>;
}

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MiB = 1 << 20;

class S3Error extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly extra: Record<string, string> = {}) { super(message); }
}

export async function startS3Server(o: S3ServerOptions): Promise<S3Server> {
  await mkdir(o.root, { recursive: true });
  const region = 'us-east-1';
  const credentials = o.credentials ?? [{ accessKeyId: `FURTEST${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(20).toString('base64') }];
  const secrets = new Map(credentials.map((c) => [c.accessKeyId, c.secretAccessKey]));
  const certificate = o.certificate === false ? undefined : o.certificate ?? makeCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const minPart = o.minPartSize ?? 5 * MiB;
  const buckets = new Map<string, Bucket>();
  const uploads = new Map<string, Upload>();
  const rules: DenyRule[] = [];
  let faultHook: ((r: S3RequestInfo) => Fault) | undefined;
  const log: S3Server['log'] = [];
  const sockets = new Set<Socket>();
  let fileSeq = 0;
  const newFile = () => join(o.root, `${Date.now().toString(36)}-${(fileSeq++).toString(36)}-${randomBytes(4).toString('hex')}`);

  const addBucket = (name: string, versioning = false) => {
    if (!buckets.has(name)) buckets.set(name, { name, versioning: versioning ? 'Enabled' : 'Unversioned', objects: new Map(), created: new Date() });
  };
  for (const b of o.buckets ?? []) addBucket(b);

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rawPath = (req.url ?? '/').split('?')[0]!;
    const segs = rawPath.split('/');
    const bucketName = decodeURIComponent(segs[1] ?? '');
    const key = segs.slice(2).map(decodeURIComponent).join('/');
    const q = url.searchParams;
    const op = operation(req.method ?? 'GET', bucketName, key, q, req.headers);
    const info: S3RequestInfo = { op, bucket: bucketName, key, partNumber: q.has('partNumber') ? Number(q.get('partNumber')) : undefined, uploadId: q.get('uploadId') ?? undefined };
    let status = 200;
    try {
      const accessKey = authenticate(req, rawPath, url, secrets, region);
      const fault = faultHook?.(info);
      if (fault === 'reset') { req.socket.destroy(); status = 0; return; }
      if (fault === 'drop') {
        // read some of the body, then cut: what a broken link does to an upload
        let seen = 0;
        const len = Number(req.headers['content-length'] ?? 0);
        req.on('data', (c: Buffer) => { seen += c.length; if (seen >= len / 2) req.socket.destroy(); });
        if (len === 0) req.socket.destroy();
        status = 0;
        return;
      }
      const body = await readBody(req);
      if (fault === 'error') throw new S3Error(500, 'InternalError', 'We encountered an internal error. Please try again.');
      const payload = decodePayload(req, body);
      // a listing is judged by the prefix it asks for, as an IAM condition on s3:prefix would
      checkDenied(rules, accessKey, op, bucketName, key || (q.get('prefix') ?? ''));
      status = await serve(op, bucketName, key, q, req, res, payload);
    } catch (e) {
      const err = e instanceof S3Error ? e : new S3Error(500, 'InternalError', (e as Error).message);
      status = err.status;
      if (!res.headersSent) {
        const extra = Object.entries(err.extra).map(([k, v]) => `<${k}>${esc(v)}</${k}>`).join('');
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${err.code}</Code><Message>${esc(err.message)}</Message>${extra}<RequestId>${randomBytes(8).toString('hex')}</RequestId></Error>`;
        res.writeHead(err.status, { 'content-type': 'application/xml', 'x-amz-request-id': randomBytes(8).toString('hex') });
        res.end(req.method === 'HEAD' ? undefined : xml);
      } else res.destroy();
    } finally {
      log.push({ op, key, status, partNumber: info.partNumber, ...(req.headers.range ? { range: req.headers.range } : {}) });
    }
  };

  function bucketOf(name: string): Bucket {
    const b = buckets.get(name);
    if (!b) throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: name });
    return b;
  }

  function latest(b: Bucket, key: string, versionId?: string | null): Version {
    const vs = b.objects.get(key) ?? [];
    const v = versionId ? vs.find((x) => x.versionId === versionId) : vs[vs.length - 1];
    if (!v || (v.deleteMarker && !versionId)) {
      if (versionId) throw new S3Error(404, 'NoSuchVersion', 'The specified version does not exist.', { Key: key, VersionId: versionId });
      throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key });
    }
    return v;
  }

  function putVersion(b: Bucket, key: string, v: Omit<Version, 'versionId'>): Version {
    const vs = b.objects.get(key) ?? [];
    const versionId = b.versioning === 'Enabled' ? randomBytes(12).toString('base64url') : 'null';
    if (versionId === 'null') {
      // unversioned and suspended buckets keep one 'null' version per key
      for (const old of vs.filter((x) => x.versionId === 'null')) drop(old);
      vs.splice(0, vs.length, ...vs.filter((x) => x.versionId !== 'null'));
    }
    const version = { ...v, versionId };
    vs.push(version);
    b.objects.set(key, vs);
    return version;
  }

  function uploadOf(b: Bucket, key: string, id: string | null): Upload {
    const u = id ? uploads.get(id) : undefined;
    if (!u || u.bucket !== b.name || u.key !== key) {
      throw new S3Error(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: id ?? '' });
    }
    return u;
  }

  async function serve(op: string, bucketName: string, key: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<number> {
    const h = req.headers;
    const send = (status: number, xml?: string, headers: Record<string, string | number> = {}) => {
      res.writeHead(status, { ...(xml !== undefined ? { 'content-type': 'application/xml' } : {}), 'x-amz-request-id': randomBytes(8).toString('hex'), ...headers });
      res.end(xml === undefined ? undefined : `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
      return status;
    };
    switch (op) {
      case 'ListBuckets':
        return send(200, `<ListAllMyBucketsResult xmlns="${NS}"><Owner><ID>fur</ID></Owner><Buckets>${[...buckets.values()].map((b) => `<Bucket><Name>${esc(b.name)}</Name><CreationDate>${b.created.toISOString()}</CreationDate></Bucket>`).join('')}</Buckets></ListAllMyBucketsResult>`);
      case 'CreateBucket':
        if (buckets.has(bucketName)) throw new S3Error(409, 'BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.');
        addBucket(bucketName);
        return send(200, undefined, { location: `/${bucketName}` });
      case 'DeleteBucket': {
        const b = bucketOf(bucketName);
        if ([...b.objects.values()].some((vs) => vs.length)) throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty');
        buckets.delete(bucketName);
        return send(204);
      }
      case 'HeadBucket':
        bucketOf(bucketName);
        return send(200, undefined, { 'x-amz-bucket-region': region });
      case 'GetBucketVersioning': {
        const b = bucketOf(bucketName);
        return send(200, `<VersioningConfiguration xmlns="${NS}">${b.versioning === 'Unversioned' ? '' : `<Status>${b.versioning}</Status>`}</VersioningConfiguration>`);
      }
      case 'PutBucketVersioning': {
        const b = bucketOf(bucketName);
        const s = tag(body.toString(), 'Status');
        if (s !== 'Enabled' && s !== 'Suspended') throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
        b.versioning = s;
        return send(200);
      }
      case 'GetBucketLocation':
        bucketOf(bucketName);
        return send(200, `<LocationConstraint xmlns="${NS}"></LocationConstraint>`);
      case 'ListObjects': case 'ListObjectsV2': {
        const b = bucketOf(bucketName);
        const v2 = op === 'ListObjectsV2';
        const prefix = q.get('prefix') ?? '';
        const delimiter = q.get('delimiter') ?? '';
        const max = Math.min(1000, Number(q.get('max-keys') ?? 1000));
        const after = v2 ? (q.get('continuation-token') ? Buffer.from(q.get('continuation-token')!, 'base64url').toString() : q.get('start-after') ?? '') : q.get('marker') ?? '';
        const keys = [...b.objects.entries()].filter(([k, vs]) => k.startsWith(prefix) && vs.length && !vs[vs.length - 1]!.deleteMarker).map(([k]) => k).sort();
        const contents: string[] = [];
        const prefixes = new Set<string>();
        let last = '';
        let truncated = false;
        for (const k of keys) {
          if (k <= after) continue;
          const rest = k.slice(prefix.length);
          const cp = delimiter && rest.includes(delimiter) ? prefix + rest.slice(0, rest.indexOf(delimiter) + delimiter.length) : undefined;
          if (cp && cp <= after) continue;
          if (contents.length + prefixes.size >= max) { truncated = true; break; }
          if (cp) { if (!prefixes.has(cp)) { prefixes.add(cp); last = cp; } continue; }
          const v = latest(b, k);
          contents.push(`<Contents><Key>${esc(k)}</Key><LastModified>${v.lastModified.toISOString()}</LastModified><ETag>&quot;${v.etag}&quot;</ETag><Size>${v.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
          last = k;
        }
        const cps = [...prefixes].map((p) => `<CommonPrefixes><Prefix>${esc(p)}</Prefix></CommonPrefixes>`).join('');
        const paging = v2
          ? `<KeyCount>${contents.length + prefixes.size}</KeyCount>${truncated ? `<NextContinuationToken>${Buffer.from(last).toString('base64url')}</NextContinuationToken>` : ''}`
          : `<Marker>${esc(after)}</Marker>${truncated ? `<NextMarker>${esc(last)}</NextMarker>` : ''}`;
        return send(200, `<ListBucketResult xmlns="${NS}"><Name>${esc(b.name)}</Name><Prefix>${esc(prefix)}</Prefix>${delimiter ? `<Delimiter>${esc(delimiter)}</Delimiter>` : ''}<MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${paging}${contents.join('')}${cps}</ListBucketResult>`);
      }
      case 'ListObjectVersions': {
        const b = bucketOf(bucketName);
        const prefix = q.get('prefix') ?? '';
        const items: string[] = [];
        for (const [k, vs] of [...b.objects.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [c]) => (a < c ? -1 : 1))) {
          vs.slice().reverse().forEach((v, i) => {
            const common = `<Key>${esc(k)}</Key><VersionId>${v.versionId}</VersionId><IsLatest>${i === 0}</IsLatest><LastModified>${v.lastModified.toISOString()}</LastModified>`;
            items.push(v.deleteMarker ? `<DeleteMarker>${common}</DeleteMarker>` : `<Version>${common}<ETag>&quot;${v.etag}&quot;</ETag><Size>${v.size}</Size><StorageClass>STANDARD</StorageClass></Version>`);
          });
        }
        return send(200, `<ListVersionsResult xmlns="${NS}"><Name>${esc(b.name)}</Name><Prefix>${esc(prefix)}</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${items.join('')}</ListVersionsResult>`);
      }
      case 'ListMultipartUploads': {
        const b = bucketOf(bucketName);
        const prefix = q.get('prefix') ?? '';
        const list = [...uploads.values()].filter((u) => u.bucket === b.name && u.key.startsWith(prefix)).sort((a, c) => (a.key < c.key ? -1 : a.key > c.key ? 1 : a.initiated.getTime() - c.initiated.getTime()));
        return send(200, `<ListMultipartUploadsResult xmlns="${NS}"><Bucket>${esc(b.name)}</Bucket><Prefix>${esc(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${list.map((u) => `<Upload><Key>${esc(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass>${u.checksumAlgorithm ? `<ChecksumAlgorithm>${u.checksumAlgorithm}</ChecksumAlgorithm>` : ''}</Upload>`).join('')}</ListMultipartUploadsResult>`);
      }
      case 'DeleteObjects': {
        const b = bucketOf(bucketName);
        const xml = body.toString();
        const done: string[] = [];
        for (const m of xml.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
          const k = unesc(tag(m[1]!, 'Key') ?? '');
          const vid = tag(m[1]!, 'VersionId');
          deleteObject(b, k, vid ? unesc(vid) : undefined);
          done.push(`<Deleted><Key>${esc(k)}</Key>${vid ? `<VersionId>${vid}</VersionId>` : ''}</Deleted>`);
        }
        return send(200, `<DeleteResult xmlns="${NS}">${done.join('')}</DeleteResult>`);
      }
      case 'PutObject': {
        const b = bucketOf(bucketName);
        const checksums = verifyChecksums(h, body);
        const file = newFile();
        await writeFile(file, body);
        // judged when the version is made, with no wait in between: of conditional PUTs at once, one wins
        if (o.conditionalWrites !== false) {
          try { precondition(b, key, h); } catch (e) { void rm(file, { force: true }); throw e; }
        }
        const v = putVersion(b, key, { deleteMarker: false, files: [{ path: file, size: body.length }], size: body.length, etag: md5(body), lastModified: new Date(), checksums, metadata: metadataOf(h) });
        return send(200, undefined, { etag: `"${v.etag}"`, ...(b.versioning !== 'Unversioned' ? { 'x-amz-version-id': v.versionId } : {}), ...checksumHeaders(checksums) });
      }
      case 'CopyObject': {
        const b = bucketOf(bucketName);
        const src = decodeURIComponent(String(h['x-amz-copy-source']).replace(/\?versionId=.*$/, '')).replace(/^\//, '');
        const sb = bucketOf(src.slice(0, src.indexOf('/')));
        const sv = latest(sb, src.slice(src.indexOf('/') + 1));
        const file = newFile();
        const copied = await readVersion(sv);
        await writeFile(file, copied);
        const v = putVersion(b, key, { ...sv, files: [{ path: file, size: copied.length }], lastModified: new Date() });
        return send(200, `<CopyObjectResult xmlns="${NS}"><ETag>&quot;${v.etag}&quot;</ETag><LastModified>${v.lastModified.toISOString()}</LastModified></CopyObjectResult>`);
      }
      case 'GetObject': case 'HeadObject': {
        const b = bucketOf(bucketName);
        const v = latest(b, key, q.get('versionId'));
        if (v.deleteMarker) throw new S3Error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
        const headers: Record<string, string | number> = {
          etag: `"${v.etag}"`, 'last-modified': v.lastModified.toUTCString(), 'accept-ranges': 'bytes',
          'content-type': 'application/octet-stream',
          ...(b.versioning !== 'Unversioned' ? { 'x-amz-version-id': v.versionId } : {}),
          ...Object.fromEntries(Object.entries(v.metadata).map(([k, val]) => [`x-amz-meta-${k}`, val])),
        };
        // a checksum covers the whole object: none for a range
        if (h['x-amz-checksum-mode'] === 'ENABLED' && !h.range) Object.assign(headers, checksumHeaders(v.checksums));
        let start = 0;
        let end = v.size - 1;
        let status = 200;
        const range = /^bytes=(\d*)-(\d*)$/.exec(String(h.range ?? ''));
        if (range) {
          if (range[1] === '') { start = Math.max(0, v.size - Number(range[2])); }
          else { start = Number(range[1]); if (range[2] !== '') end = Math.min(end, Number(range[2])); }
          if (start >= v.size) throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', { RangeRequested: String(h.range), ActualObjectSize: String(v.size) });
          status = 206;
          headers['content-range'] = `bytes ${start}-${end}/${v.size}`;
        }
        headers['content-length'] = Math.max(0, end - start + 1);
        res.writeHead(status, headers);
        if (op === 'HeadObject' || end < start) { res.end(); return status; }
        let at = 0;
        for (const piece of v.files) {
          const lo = Math.max(start, at);
          const hi = Math.min(end, at + piece.size - 1);
          if (hi >= lo) await pipeline(createReadStream(piece.path, { start: lo - at, end: hi - at }), res, { end: false });
          at += piece.size;
        }
        res.end();
        return status;
      }
      case 'DeleteObject': {
        const b = bucketOf(bucketName);
        const r = deleteObject(b, key, q.get('versionId') ?? undefined);
        return send(204, undefined, r);
      }
      case 'CreateMultipartUpload': {
        const b = bucketOf(bucketName);
        const id = randomBytes(24).toString('base64url');
        const algorithm = h['x-amz-checksum-algorithm'] ? String(h['x-amz-checksum-algorithm']).toUpperCase() : undefined;
        uploads.set(id, { id, bucket: b.name, key, initiated: new Date(), checksumAlgorithm: algorithm, metadata: metadataOf(h), parts: new Map() });
        return send(200, `<InitiateMultipartUploadResult xmlns="${NS}"><Bucket>${esc(b.name)}</Bucket><Key>${esc(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
          algorithm ? { 'x-amz-checksum-algorithm': algorithm } : {});
      }
      case 'UploadPart': {
        const b = bucketOf(bucketName);
        const u = uploadOf(b, key, q.get('uploadId'));
        const n = Number(q.get('partNumber'));
        if (!Number.isInteger(n) || n < 1 || n > 10000) throw new S3Error(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber' });
        const checksums = verifyChecksums(h, body);
        if (u.checksumAlgorithm && !checksums[u.checksumAlgorithm.toLowerCase()]) {
          throw new S3Error(400, 'InvalidRequest', `The upload was created using a ${u.checksumAlgorithm} checksum. The part must be uploaded with one too.`);
        }
        const file = newFile();
        await writeFile(file, body);
        const old = u.parts.get(n);
        if (old) void rm(old.file, { force: true });
        const etag = md5(body);
        u.parts.set(n, { number: n, file, size: body.length, etag, checksums, lastModified: new Date() });
        return send(200, undefined, { etag: `"${etag}"`, ...checksumHeaders(checksums) });
      }
      case 'ListParts': {
        const b = bucketOf(bucketName);
        const u = uploadOf(b, key, q.get('uploadId'));
        const marker = Number(q.get('part-number-marker') ?? 0);
        const max = Math.min(1000, Number(q.get('max-parts') ?? 1000));
        const all = [...u.parts.values()].sort((a, c) => a.number - c.number).filter((p) => p.number > marker);
        const page = all.slice(0, max);
        const truncated = all.length > max;
        const parts = page.map((p) => `<Part><PartNumber>${p.number}</PartNumber><LastModified>${p.lastModified.toISOString()}</LastModified><ETag>&quot;${p.etag}&quot;</ETag><Size>${p.size}</Size>${Object.entries(p.checksums).map(([a, v]) => `<Checksum${a.toUpperCase()}>${v}</Checksum${a.toUpperCase()}>`).join('')}</Part>`).join('');
        return send(200, `<ListPartsResult xmlns="${NS}"><Bucket>${esc(b.name)}</Bucket><Key>${esc(key)}</Key><UploadId>${u.id}</UploadId><PartNumberMarker>${marker}</PartNumberMarker>${truncated ? `<NextPartNumberMarker>${page[page.length - 1]!.number}</NextPartNumberMarker>` : ''}<MaxParts>${max}</MaxParts><IsTruncated>${truncated}</IsTruncated>${u.checksumAlgorithm ? `<ChecksumAlgorithm>${u.checksumAlgorithm}</ChecksumAlgorithm>` : ''}${parts}</ListPartsResult>`);
      }
      case 'AbortMultipartUpload': {
        const b = bucketOf(bucketName);
        const u = uploadOf(b, key, q.get('uploadId'));
        uploads.delete(u.id);
        for (const p of u.parts.values()) void rm(p.file, { force: true });
        return send(204);
      }
      case 'CompleteMultipartUpload': {
        const b = bucketOf(bucketName);
        const u = uploadOf(b, key, q.get('uploadId'));
        const listed = [...body.toString().matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
          number: Number(tag(m[1]!, 'PartNumber')),
          etag: unesc(tag(m[1]!, 'ETag') ?? '').replace(/"/g, ''),
          checksums: Object.fromEntries(['SHA256', 'CRC32', 'CRC32C', 'SHA1'].flatMap((a) => { const v = tag(m[1]!, `Checksum${a}`); return v ? [[a.toLowerCase(), v]] : []; })),
        }));
        if (listed.length === 0) throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
        const parts: Part[] = [];
        listed.forEach((l, i) => {
          if (i > 0 && l.number <= listed[i - 1]!.number) throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
          const p = u.parts.get(l.number);
          if (!p || p.etag !== l.etag) throw new S3Error(400, 'InvalidPart', 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.', { PartNumber: String(l.number) });
          for (const [a, v] of Object.entries(l.checksums)) {
            if (p.checksums[a] !== v) throw new S3Error(400, 'InvalidPart', `The ${a.toUpperCase()} checksum given for part ${l.number} does not match the part's.`, { PartNumber: String(l.number) });
          }
          if (i < listed.length - 1 && p.size < minPart) throw new S3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', { PartNumber: String(l.number), ProposedSize: String(p.size), MinSizeAllowed: String(minPart) });
          parts.push(p);
        });
        const size = parts.reduce((n, p) => n + p.size, 0);
        const etag = `${md5(Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex'))))}-${parts.length}`;
        const checksums: Record<string, string> = {};
        const alg = u.checksumAlgorithm?.toLowerCase();
        if (alg && parts.every((p) => p.checksums[alg])) {
          const hash = alg === 'sha256' ? 'sha256' : alg === 'sha1' ? 'sha1' : undefined;
          if (hash) checksums[alg] = `${createHash(hash).update(Buffer.concat(parts.map((p) => Buffer.from(p.checksums[alg]!, 'base64')))).digest('base64')}-${parts.length}`;
        }
        // the object is its parts' files, in order (no copy); parts left out of the list go
        const v = putVersion(b, key, { deleteMarker: false, files: parts.map((p) => ({ path: p.file, size: p.size })), size, etag, lastModified: new Date(), checksums, metadata: u.metadata, partsCount: parts.length });
        uploads.delete(u.id);
        for (const p of u.parts.values()) if (!parts.includes(p)) void rm(p.file, { force: true });
        return send(200, `<CompleteMultipartUploadResult xmlns="${NS}"><Location>/${esc(b.name)}/${esc(key)}</Location><Bucket>${esc(b.name)}</Bucket><Key>${esc(key)}</Key><ETag>&quot;${etag}&quot;</ETag>${Object.entries(checksums).map(([a, val]) => `<Checksum${a.toUpperCase()}>${val}</Checksum${a.toUpperCase()}>`).join('')}</CompleteMultipartUploadResult>`,
          b.versioning !== 'Unversioned' ? { 'x-amz-version-id': v.versionId } : {});
      }
      default:
        throw new S3Error(501, 'NotImplemented', `fur's test server does not implement ${op}`);
    }
  }

  /** If-None-Match: * (no current object) and If-Match: <etag> (the current one's), refused with 412 as AWS does */
  function precondition(b: Bucket, key: string, h: IncomingMessage['headers']): void {
    const vs = b.objects.get(key) ?? [];
    const current = vs.length && !vs[vs.length - 1]!.deleteMarker ? vs[vs.length - 1] : undefined;
    const fail = () => { throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: h['if-none-match'] ? 'If-None-Match' : 'If-Match' }); };
    if (h['if-none-match'] === '*' && current) fail();
    if (h['if-match'] !== undefined && (!current || String(h['if-match']).replace(/"/g, '') !== current.etag)) fail();
  }

  function deleteObject(b: Bucket, key: string, versionId?: string): Record<string, string> {
    const vs = b.objects.get(key) ?? [];
    if (versionId) {
      const i = vs.findIndex((v) => v.versionId === versionId);
      if (i >= 0) drop(vs.splice(i, 1)[0]!);
      if (vs.length === 0) b.objects.delete(key);
      return { 'x-amz-version-id': versionId };
    }
    if (b.versioning === 'Unversioned') {
      for (const v of vs) drop(v);
      b.objects.delete(key);
      return {};
    }
    const marker = putVersion(b, key, { deleteMarker: true, files: [], size: 0, etag: '', lastModified: new Date(), checksums: {}, metadata: {} });
    return { 'x-amz-delete-marker': 'true', 'x-amz-version-id': marker.versionId };
  }

  const server: Server = certificate
    ? createHttpsServer({ cert: certificate.cert, key: certificate.key }, (q, r) => { void handler(q, r); })
    : createHttpServer((q, r) => { void handler(q, r); });
  server.on(certificate ? 'secureConnection' : 'connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.on('clientError', (_e, s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `${certificate ? 'https' : 'http'}://127.0.0.1:${port}`,
    certificate,
    credentials: credentials[0]!,
    region,
    createBucket: (name, opts) => addBucket(name, opts?.versioning),
    setVersioning(name, on) { bucketOf(name).versioning = on ? 'Enabled' : 'Suspended'; },
    deny: (rule) => { rules.push(rule); },
    allowAll: () => { rules.length = 0; },
    fault: (hook) => { faultHook = hook; },
    keys: (name) => [...(buckets.get(name)?.objects.entries() ?? [])].filter(([, vs]) => vs.length && !vs[vs.length - 1]!.deleteMarker).map(([k]) => k).sort(),
    versions: (name) => [...(buckets.get(name)?.objects.entries() ?? [])].flatMap(([key, vs]) => vs.map((v) => ({ key, versionId: v.versionId, deleteMarker: v.deleteMarker }))),
    async object(name, key) {
      const vs = buckets.get(name)?.objects.get(key);
      const v = vs?.[vs.length - 1];
      if (!v || v.deleteMarker) return undefined;
      return readVersion(v);
    },
    uploads: (name) => [...uploads.values()].filter((u) => u.bucket === name).map((u) => ({ key: u.key, uploadId: u.id, parts: [...u.parts.keys()].sort((a, c) => a - c) })),
    log,
    dropConnections() { for (const s of sockets) s.destroy(); },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** The S3 operation a request names (path-style addressing). */
function operation(method: string, bucket: string, key: string, q: URLSearchParams, h: IncomingMessage['headers']): string {
  if (!bucket) return method === 'GET' ? 'ListBuckets' : 'Unknown';
  if (!key) {
    if (method === 'GET') {
      if (q.has('versioning')) return 'GetBucketVersioning';
      if (q.has('location')) return 'GetBucketLocation';
      if (q.has('versions')) return 'ListObjectVersions';
      if (q.has('uploads')) return 'ListMultipartUploads';
      return q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    }
    if (method === 'PUT') return q.has('versioning') ? 'PutBucketVersioning' : 'CreateBucket';
    if (method === 'HEAD') return 'HeadBucket';
    if (method === 'DELETE') return 'DeleteBucket';
    if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
    return 'Unknown';
  }
  if (method === 'PUT') return q.has('uploadId') ? 'UploadPart' : h['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
  if (method === 'GET') return q.has('uploadId') ? 'ListParts' : 'GetObject';
  if (method === 'HEAD') return 'HeadObject';
  if (method === 'DELETE') return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  if (method === 'POST') return q.has('uploads') ? 'CreateMultipartUpload' : q.has('uploadId') ? 'CompleteMultipartUpload' : 'Unknown';
  return 'Unknown';
}

const ACTION_OF: Record<string, S3Action> = {
  GetObject: 'GetObject', HeadObject: 'GetObject', ListParts: 'PutObject',
  PutObject: 'PutObject', CopyObject: 'PutObject', UploadPart: 'PutObject', CreateMultipartUpload: 'PutObject', CompleteMultipartUpload: 'PutObject',
  DeleteObject: 'DeleteObject', DeleteObjects: 'DeleteObject', AbortMultipartUpload: 'AbortMultipartUpload',
  ListObjects: 'ListBucket', ListObjectsV2: 'ListBucket', ListObjectVersions: 'ListBucket', HeadBucket: 'ListBucket',
  ListMultipartUploads: 'ListMultipartUploads', GetBucketVersioning: 'GetBucketVersioning', PutBucketVersioning: 'PutBucketVersioning',
};

function checkDenied(rules: DenyRule[], accessKey: string, op: string, bucket: string, key: string): void {
  const action = ACTION_OF[op];
  for (const r of rules) {
    if (r.accessKeyId && r.accessKeyId !== accessKey) continue;
    if (r.bucket && r.bucket !== bucket) continue;
    if (r.action !== '*' && r.action !== action) continue;
    if (r.prefix && !key.startsWith(r.prefix)) continue;
    throw new S3Error(403, 'AccessDenied', 'Access Denied');
  }
}

// ---- Signature V4 ----

function authenticate(req: IncomingMessage, rawPath: string, url: URL, secrets: Map<string, string>, region: string): string {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw new S3Error(403, 'AccessDenied', auth ? 'Unsupported Authorization header (fur\'s test server takes AWS4-HMAC-SHA256 only)' : 'Anonymous access is not allowed');
  const [, accessKey, date, reqRegion, signedHeaders, signature] = m as unknown as string[];
  const secret = secrets.get(accessKey!);
  if (secret === undefined) throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: accessKey! });
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD');
  const query = [...rawQueryPairs(url)].map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join('&');
  const names = signedHeaders!.split(';');
  const headers = names.map((n) => `${n}:${headerValue(req, n)}\n`).join('');
  const canonical = [req.method, rawPath, query, headers, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${reqRegion}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n');
  let k = hmac(`AWS4${secret}`, date!);
  k = hmac(k, reqRegion!);
  k = hmac(k, 's3');
  k = hmac(k, 'aws4_request');
  const expected = createHmac('sha256', k).update(toSign).digest();
  const given = Buffer.from(signature!, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', { AWSAccessKeyId: accessKey! });
  }
  void region;
  return accessKey!;
}

function* rawQueryPairs(url: URL): Generator<[string, string]> {
  const raw = url.search.replace(/^\?/, '');
  if (!raw) return;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const i = part.indexOf('=');
    const k = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? '' : part.slice(i + 1);
    yield [decodeURIComponent(k), decodeURIComponent(v)];
  }
}

function headerValue(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v.join(',') : String(v ?? '');
  return s.trim().replace(/\s+/g, ' ');
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
function hmac(key: string | Buffer, data: string): Buffer { return createHmac('sha256', key).update(data).digest(); }
function sha256hex(s: string | Buffer): string { return createHash('sha256').update(s).digest('hex'); }
function md5(b: Buffer): string { return createHash('md5').update(b).digest('hex'); }
/** a body's SHA-256, computed once for the signature's payload hash and the checksum header */
const digests = new WeakMap<Buffer, Buffer>();
function bodySha256(b: Buffer): Buffer {
  let d = digests.get(b);
  if (!d) { d = createHash('sha256').update(b).digest(); digests.set(b, d); }
  return d;
}

// ---- bodies and checksums ----

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The payload as the client meant it: aws-chunked bodies unwrapped (trailing checksums become headers), the signed hash checked. */
function decodePayload(req: IncomingMessage, body: Buffer): Buffer {
  const sha = String(req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD');
  if (sha.startsWith('STREAMING-')) {
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) break;
      const size = parseInt(body.subarray(at, eol).toString().split(';')[0]!, 16);
      at = eol + 2;
      if (size === 0) {
        // trailers: `name:value\r\n`…
        for (const line of body.subarray(at).toString().split('\r\n')) {
          const i = line.indexOf(':');
          if (i > 0 && !line.startsWith('x-amz-trailer-signature')) req.headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        break;
      }
      out.push(body.subarray(at, at + size));
      at += size + 2;
    }
    const decoded = Buffer.concat(out);
    const declared = req.headers['x-amz-decoded-content-length'];
    if (declared !== undefined && Number(declared) !== decoded.length) throw new S3Error(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
    return decoded;
  }
  if (/^[0-9a-f]{64}$/.test(sha) && bodySha256(body).toString('hex') !== sha) {
    throw new S3Error(400, 'XAmzContentSHA256Mismatch', 'The provided \'x-amz-content-sha256\' header does not match what was computed.');
  }
  return body;
}

function verifyChecksums(h: IncomingMessage['headers'], body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  if (h['content-md5'] !== undefined && createHash('md5').update(body).digest('base64') !== h['content-md5']) {
    throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  const sha = h['x-amz-checksum-sha256'];
  if (sha !== undefined) {
    if (bodySha256(body).toString('base64') !== sha) throw new S3Error(400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.');
    out.sha256 = String(sha);
  }
  const crc = h['x-amz-checksum-crc32'];
  if (crc !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc32(body));
    if (b.toString('base64') !== crc) throw new S3Error(400, 'BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
    out.crc32 = String(crc);
  }
  // CRC32C and CRC64NVME are accepted as given (not verified here)
  for (const a of ['crc32c', 'crc64nvme', 'sha1']) if (h[`x-amz-checksum-${a}`] !== undefined) out[a] = String(h[`x-amz-checksum-${a}`]);
  return out;
}

function checksumHeaders(c: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(c).map(([a, v]) => [`x-amz-checksum-${a}`, v]));
}

function metadataOf(h: IncomingMessage['headers']): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith('x-amz-meta-')).map(([k, v]) => [k.slice(11), String(v)]));
}

let table: Uint32Array | undefined;
function crc32(b: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = table[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function drop(v: Version): void {
  for (const f of v.files) void rm(f.path, { force: true });
}

async function readVersion(v: Version): Promise<Buffer> {
  return Buffer.concat(await Promise.all(v.files.map((f) => readAll(f.path))));
}

async function readAll(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const { size } = await stat(file);
    const out = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(out, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return out;
  } finally {
    await fh.close();
  }
}

function tag(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1];
}
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
function unesc(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#34;/g, '"').replace(/&amp;/g, '&');
}
