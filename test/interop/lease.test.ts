/**
 * One writer per destination against real servers: two `fur watch` processes started together on
 * one destination — Debian's OpenSSH server (its sftp-server's OPEN with CREAT|EXCL), vsftpd with
 * TLS (claims: FTP has no exclusive create), a file:// folder, and fur's S3 test server honouring
 * If-None-Match and ignoring it (claims) — for every method each supports.
 * Exactly one writes; the other exits 1 naming it, having written and deleted nothing; h5py
 * (HDF5 1.10.8) reads every frame the winner stored, equal to its camera's; every frame of both
 * cameras is stored intact or still on the local disk.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openDestination } from '../../src/transport/open.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { type Method } from '../pipeline/helpers.js';
import { type Cam } from './ftps-s3-check.js';
import { startVsftpd, type Vsftpd } from './ftps-vsftpd.js';
import { startSshd, type Sshd } from './support/sshd.js';
import { twoRunsOneDestination } from './support/two-runs.js';

const work = mkdtempSync(join(tmpdir(), 'fur-interop-lease-'));
let sshd: Sshd;
let ftp: Vsftpd;
/** fur's S3 test server honouring If-None-Match, and one ignoring it */
const s3 = {} as Record<'conditional' | 'claims', S3Server>;
const S3_KEYS = { accessKeyId: 'FURINTEROPLEASEKEY01', secretAccessKey: 'fur/interop/lease/secret/0123456789abcdef' };
const caOf = (k: 'conditional' | 'claims') => join(work, `${k}-ca.pem`);
before(async () => {
  [sshd, ftp, s3.conditional, s3.claims] = await Promise.all([startSshd({ root: join(work, 'sftp') }), startVsftpd(),
    startS3Server({ root: join(work, 's3-conditional'), buckets: ['lab'], credentials: [S3_KEYS] }),
    startS3Server({ root: join(work, 's3-claims'), buckets: ['lab'], credentials: [S3_KEYS], conditionalWrites: false })]);
  for (const k of ['conditional', 'claims'] as const) writeFileSync(caOf(k), s3[k].certificate!.cert);
});
after(async () => {
  await sshd?.dispose();
  await ftp?.stop();
  await s3.conditional?.close();
  await s3.claims?.close();
  rmSync(work, { recursive: true, force: true });
});

/** fur's environment: for S3 the test keys, nothing of the machine's AWS setup */
const env = (): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))),
  AWS_ACCESS_KEY_ID: S3_KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_KEYS.secretAccessKey, AWS_REGION: 'us-east-1',
  AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true',
});

const CAM = (seed: number): Cam => ({ format: 'tiff', dtype: 'uint8', shape: [96, 128, 3], frames: 60, fps: 0, seed });

interface Server {
  name: string;
  methods: Method[];
  /** the URL of a destination named `name` */
  url(method: Method, name: string): string;
  /** the file (append) or folder with what is stored there, on this machine (S3: copied from the store) */
  local(method: Method, name: string): Promise<string>;
  flags(): string[];
}

/** A test S3 server's objects of a destination, copied into a fresh local folder. */
async function mirror(kind: 'conditional' | 'claims', key: string): Promise<string> {
  const root = mkdtempSync(join(work, 'mirror-'));
  for (const k of s3[kind].keys('lab').filter((x) => x === key || x.startsWith(`${key}/`))) {
    mkdirSync(dirname(join(root, k)), { recursive: true });
    writeFileSync(join(root, k), (await s3[kind].object('lab', k))!);
  }
  return join(root, key);
}

const target = (m: Method, n: string) => (m === 'append' ? `${n}.h5` : n);
const SERVERS: Server[] = [
  {
    name: 'OpenSSH', methods: ['append', 'batches', 'files'],
    url: (m, n) => `sftp://${sshd.user}@${sshd.host}:${sshd.port}${join(sshd.root, target(m, n))}`,
    local: async (m, n) => join(sshd.root, target(m, n)),
    flags: () => ['--identity', sshd.identityFile, '--known-hosts', sshd.knownHostsFile],
  },
  {
    name: 'vsftpd', methods: ['batches', 'files'],
    url: (m, n) => ftp.url(target(m, n)),
    local: async (m, n) => join(ftp.home, target(m, n)),
    flags: () => ['--password-env', ftp.passwordEnv, '--ca-file', ftp.caFile],
  },
  {
    name: 'file://', methods: ['append', 'batches', 'files'],
    url: (m, n) => pathToFileURL(join(work, 'share', target(m, n))).href,
    local: async (m, n) => join(work, 'share', target(m, n)),
    flags: () => [],
  },
  ...(['conditional', 'claims'] as const).map((k): Server => ({
    name: `S3 (${k === 'conditional' ? 'honours' : 'ignores'} If-None-Match)`, methods: ['append', 'batches', 'files'],
    url: (m, n) => `s3://lab/${target(m, n)}`,
    local: (m, n) => mirror(k, target(m, n)),
    flags: () => ['--endpoint', s3[k].endpoint, '--ca-file', caOf(k)],
  })),
];

describe('two fur runs started together on one destination', () => {
  for (const server of SERVERS) {
    for (const method of server.methods) {
      test(`${server.name}, ${method}: exactly one writes; h5py reads its frames back equal; the other kept every file`, async () => {
        const name = `two-${method}`;
        mkdirSync(join(work, 'share'), { recursive: true });
        const s3kind = server.name.startsWith('S3') ? (server.name.includes('honours') ? 'conditional' : 'claims') : undefined;
        await twoRunsOneDestination({
          method, url: server.url(method, name), flags: server.flags(), env: env(), work, cams: [CAM(701), CAM(702)],
          stored: () => server.local(method, name),
          leftovers: async () => {
            const stored = await server.local(method, name);
            const folder = method === 'append' ? join(stored, '..') : stored;
            const here = readdirSync(folder).filter((n) => n.includes('fur-lease'));
            return s3kind ? [...here, ...s3[s3kind].keys('lab').filter((x) => x.includes('fur-lease') || x.includes('fur-probe'))] : here;
          },
        });
      });
    }
  }
});

describe('the exclusive record on real servers', () => {
  for (const server of SERVERS.slice(0, 2)) {
    test(`${server.name}: of six runs creating it at once from their own connections, exactly one succeeds`, async () => {
      const options = server.name === 'OpenSSH'
        ? { identity: sshd.identityFile, knownHosts: sshd.knownHostsFile, createRoot: true }
        : { passwordEnv: ftp.passwordEnv, caFile: ftp.caFile, createRoot: true };
      const dests = await Promise.all(Array.from({ length: 6 }, () => openDestination(server.url('files', 'exclusive'), options)));
      try {
        const made = await Promise.all(dests.map((d, i) => d.exclusive('.fur-lease').create(Buffer.from(`run ${i}`))));
        assert.equal(made.filter(Boolean).length, 1, `created: ${made}`);
        const text = Buffer.from((await dests[0]!.exclusive('.fur-lease').read())!).toString();
        assert.equal(text, `run ${made.indexOf(true)}`);
      } finally {
        for (const d of dests) await d.close();
      }
    });
  }
});
