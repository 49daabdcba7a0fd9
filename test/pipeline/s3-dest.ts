/**
 * S3 and FTPS destinations for the pipeline tests: fur's in-process S3-compatible server over
 * HTTPS and ftp-srv over TLS, both with certificates made here, and a way to read back what a run
 * stored (objects are downloaded into a local mirror, then read by the same oracle as the others).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startS3Server, type S3Server, type S3ServerOptions } from '../support/s3-server.js';
import { startFtpsServer, type FtpsServer, type FtpsServerOptions } from '../transport/ftps-server.js';
import { readdir } from 'node:fs/promises';
import { sortSequence } from '../../src/source/sequence.js';
import { readH5, readStored, scratch, type Dest, type Method, type Stored } from './helpers.js';
import type { ReadOptions } from '../../src/source/readers/index.js';

/** Fixed test keys: the CLI runs in this process and reads them from the environment, as it would in the field. */
export const S3_KEYS = { accessKeyId: 'FURTESTACCESSKEY0001', secretAccessKey: 'fur/test/secret/key/that/is/long/enough' };

/** The AWS environment of the CLI under test: these keys, no profile or instance metadata of the machine running the tests. */
export function useTestAwsEnv(): void {
  process.env.AWS_ACCESS_KEY_ID = S3_KEYS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_KEYS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_ENDPOINT_URL;
  delete process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_CONFIG_FILE = '/nonexistent/fur-test-aws-config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/fur-test-aws-credentials';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_REGION = 'us-east-1';
}

export interface S3Dest {
  server: S3Server;
  bucket: string;
  /** CLI flags that reach and trust the server */
  flags: string[];
  caFile: string;
  url(method: Method, name: string): string;
  /** the key (append) or prefix (batches, files) a run stores under */
  key(method: Method, name: string): string;
  /** download what a run stored and read it like any destination (`anySidecars`: see readBatches) */
  stored(method: Method, name: string, read?: ReadOptions, anySidecars?: boolean): Promise<Stored>;
  /** download one object to a local file */
  download(key: string): Promise<string>;
}

type T = { after: (fn: () => Promise<void>) => void };

export async function openS3Dest(t: T, o: Partial<S3ServerOptions> = {}, bucket = 'lab'): Promise<S3Dest> {
  const base = await scratch(t, 'fur-dest-s3-');
  const server = await startS3Server({ root: join(base, 'store'), buckets: [bucket], credentials: [S3_KEYS], ...o });
  t.after(() => server.close());
  const caFile = join(base, 'ca.pem');
  await writeFile(caFile, server.certificate!.cert);
  const key = (m: Method, n: string) => (m === 'append' ? `${n}.h5` : n);
  let mirrors = 0;
  const download = async (k: string, root = join(base, `mirror${mirrors++}`)): Promise<string> => {
    const bytes = await server.object(bucket, k);
    if (!bytes) throw new Error(`no object s3://${bucket}/${k}`);
    const path = join(root, k);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    return path;
  };
  return {
    server, bucket, caFile,
    flags: ['--endpoint', server.endpoint, '--ca-file', caFile],
    url: (m, n) => `s3://${bucket}/${key(m, n)}`,
    key,
    download: (k) => download(k),
    async stored(m, n, read = {}, anySidecars = false) {
      const root = join(base, `mirror${mirrors++}`);
      const k = key(m, n);
      if (m === 'append') await download(k, root);
      else {
        await mkdir(join(root, k), { recursive: true });
        for (const obj of server.keys(bucket).filter((x) => x.startsWith(`${k}/`))) await download(obj, root);
      }
      const dest: Dest = { kind: 'file', root, flags: [], url: () => '', local: (mm, nn) => join(root, key(mm, nn)), close: async () => {} };
      return m === 'batches' && anySidecars ? readBatches(join(root, k)) : readStored(dest, m, n, read);
    },
  };
}

export const FTPS_PASSWORD_ENV = 'FUR_PIPELINE_TEST_FTPS_PASSWORD';
export const FTPS_PASSWORD = 'ftps-test-password';

export interface FtpsDest extends Dest {
  ftps: FtpsServer;
}

/** ftp-srv over TLS serving a local folder: what a run stores is read in place. */
export async function openFtpsDest(t: T, o: Partial<FtpsServerOptions> = {}): Promise<FtpsDest> {
  process.env[FTPS_PASSWORD_ENV] = FTPS_PASSWORD;
  const base = await scratch(t, 'fur-dest-ftps-');
  const root = join(base, 'remote');
  const ftps = await startFtpsServer({ root, password: FTPS_PASSWORD, ...o });
  t.after(() => ftps.close());
  const caFile = join(base, 'ca.pem');
  await writeFile(caFile, ftps.certificate.cert);
  const target = (m: Method, n: string) => (m === 'append' ? `${n}.h5` : n);
  return {
    kind: 'file', root, ftps,
    flags: ['--password-env', FTPS_PASSWORD_ENV, '--ca-file', caFile],
    url: (m, n) => ftps.url(`/${target(m, n)}`),
    local: (m, n) => join(root, target(m, n)),
    close: () => ftps.close(),
  };
}

/**
 * The batch files in a folder, read in order, without requiring a chunk-index sidecar beside each:
 * a run killed between publishing a batch file and writing its sidecar leaves it without one
 * (the frames are all there; `fur index` writes the missing sidecar).
 */
export async function readBatches(dir: string): Promise<Stored> {
  const out: Stored = { frames: [], names: [], pages: [], docs: [] };
  for (const n of sortSequence((await readdir(dir)).filter((x) => x.endsWith('.h5')))) {
    const s = await readH5(join(dir, n));
    out.frames.push(...s.frames);
    out.names.push(...s.names);
    out.pages.push(...s.pages);
    out.docs.push(...s.docs);
  }
  return out;
}
