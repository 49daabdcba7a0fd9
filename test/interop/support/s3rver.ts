/**
 * s3rver (npm), a small S3 look-alike many projects test against, run as a child process on
 * 127.0.0.1 with its data in a temporary directory. On Node ≥ 17 it needs the OpenSSL legacy
 * provider, so the process is started with `--openssl-legacy-provider`.
 *
 * What it lacks, and fur must live with: ListParts, AbortMultipartUpload and ListObjectVersions
 * (405 MethodNotAllowed), ListMultipartUploads (501 NotImplemented); `If-None-Match: *` on
 * PutObject is ignored (the object is replaced). Its fixed keys are S3RVER / S3RVER.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface S3rver {
  readonly endpoint: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** where it keeps objects and parts */
  readonly dir: string;
  stop(): Promise<void>;
}

const BIN = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');

export async function startS3rver(opts: { buckets: string[]; startTimeoutMs?: number }): Promise<S3rver> {
  const dir = mkdtempSync(join(tmpdir(), 'fur-s3rver-'));
  const args = ['--openssl-legacy-provider', BIN, '-d', join(dir, 'data'), '-a', '127.0.0.1', '-p', '0', '--silent', ...opts.buckets.flatMap((b) => ['--configure-bucket', b])];
  const p: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((res) => { p.once('exit', () => res()); p.kill('SIGKILL'); });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => { try { p.kill('SIGKILL'); } catch { /* gone */ } });
  let out = '';
  try {
    const port = await new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`s3rver did not start within ${opts.startTimeoutMs ?? 30_000} ms:\n${out}`)), opts.startTimeoutMs ?? 30_000);
      const seen = (b: Buffer) => {
        out += b.toString('utf8');
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) { clearTimeout(timer); res(Number(m[1])); }
      };
      p.stdout!.on('data', seen);
      p.stderr!.on('data', seen);
      p.once('exit', (code) => { clearTimeout(timer); rej(new Error(`s3rver exited (${code}) during start:\n${out}`)); });
    });
    return { endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, dir, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
