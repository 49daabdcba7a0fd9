/**
 * The S3 client fur uses: AWS SDK v3 with the usual credential chain (environment, shared
 * config and credentials files, profiles, SSO, instance roles), any S3-compatible endpoint
 * (path-style addressing), extra trusted CAs, and bounded connection pools.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { FurError } from '../errors.js';
import type { Egress } from './egress.js';
import { trustedCertificates, type TlsTrustOptions } from './ftps-tls.js';

export interface S3ClientOptions extends TlsTrustOptions {
  /** an S3-compatible service: https://host:port (default AWS, or $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL) */
  endpoint?: string;
  /** default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region, else us-east-1 */
  region?: string;
  /** a profile of ~/.aws/config and ~/.aws/credentials (default $AWS_PROFILE or 'default') */
  profile?: string;
  /** bucket in the path, not the host name (default: true with a custom endpoint) */
  pathStyle?: boolean;
  /** explicit keys (tests, embedding); default: the SDK's credential chain */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** connections per destination (default 16) */
  maxSockets?: number;
  /** where request bodies leave: counted, and paced by --bwlimit */
  egress?: Egress;
  /** limit for opening a connection, ms (--connect-timeout; default and at most 10 s: a TCP connect needs no more) */
  connectTimeoutMs?: number;
}

export interface MadeClient {
  client: S3Client;
  /** the endpoint in use, for messages (undefined = AWS) */
  endpoint?: string;
  region: string;
}

export async function makeS3Client(o: S3ClientOptions): Promise<MadeClient> {
  // fur supports Node 20 (package engines); the SDK's notice about its future versions is not
  // something a person running fur can act on
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = o.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  if (endpoint !== undefined) {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      throw new FurError('bad-option', `--endpoint '${endpoint}' is not a URL; expected https://host[:port]`, { setting: '--endpoint', value: endpoint });
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      throw new FurError('bad-option', `--endpoint '${endpoint}': use an https:// (or http://) URL`, { setting: '--endpoint', value: endpoint });
    }
  }
  const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? profileRegion(o.profile) ?? 'us-east-1';
  const ca = await trustedCertificates(o);
  const maxSockets = o.maxSockets ?? 16;
  const config: S3ClientConfig = {
    region,
    forcePathStyle: o.pathStyle ?? endpoint !== undefined,
    followRegionRedirects: true,
    maxAttempts: 3,
    requestHandler: {
      // a context made once: given `ca`, every new connection would parse the whole list again
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets, ...(ca ? { secureContext: createSecureContext({ ca }) } : {}) }),
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: Math.min(10_000, o.connectTimeoutMs ?? 10_000),
      requestTimeout: 120_000,
    },
  };
  if (endpoint !== undefined) config.endpoint = endpoint;
  if (o.profile !== undefined) config.profile = o.profile;
  if (o.credentials) config.credentials = o.credentials;
  const client = new S3Client(config);
  // Every body fur sends carries its SHA-256 as x-amz-checksum-sha256; SigV4 wants the same digest
  // in hex as x-amz-content-sha256, and the signer hashes the body again unless it is there.
  client.middlewareStack.add((next) => async (args) => {
    const req = args.request as { headers?: Record<string, string> };
    const sum = req.headers?.['x-amz-checksum-sha256'];
    if (req.headers && sum && !req.headers['x-amz-content-sha256'] && !req.headers['content-encoding']?.includes('aws-chunked')) {
      req.headers['x-amz-content-sha256'] = Buffer.from(sum, 'base64').toString('hex');
    }
    return next(args);
  }, { step: 'build', priority: 'low', name: 'furPayloadHash' });
  const egress = o.egress;
  if (egress) {
    // after signing and retries, right before the request is sent: every attempt's body is paced
    client.middlewareStack.add((next) => async (args) => {
      const body = (args.request as { body?: unknown }).body;
      const n = typeof body === 'string' ? Buffer.byteLength(body) : body instanceof Uint8Array ? body.length : 0;
      const turn = n > 0 ? egress.take(n) : undefined;
      if (turn) await turn;
      return next(args);
    }, { step: 'finalizeRequest', priority: 'low', name: 'furEgress' });
  }
  return { client, endpoint: endpoint?.replace(/\/$/, ''), region };
}

/** The region of a profile in the shared config file (the SDK resolves it only when a request needs it). */
function profileRegion(profile = process.env.AWS_PROFILE ?? 'default'): string | undefined {
  const file = process.env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const want = profile === 'default' ? ['default', 'profile default'] : [`profile ${profile}`];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const section = /^\[(.+)\]$/.exec(line);
    if (section) { current = section[1]!.trim(); continue; }
    const kv = /^region\s*=\s*(\S+)$/.exec(line);
    if (kv && want.includes(current)) return kv[1];
  }
  return undefined;
}
