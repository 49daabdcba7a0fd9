/** pyftpdlib's FTPS server (pyftpd_tls.py, Debian's python3-pyftpdlib) on 127.0.0.1, a port the system picks. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './repo.js';
import { stopAll } from './daemon.js';

const SCRIPT = join(REPO, 'harness', 'pyftpd_tls.py');

export async function startPyftpd(o: { home: string; certFile: string; keyFile: string; user: string; password: string }): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn('/usr/bin/python3', [SCRIPT, o.home, o.certFile, o.keyFile, o.user], {
    env: { ...process.env, FUR_PYFTPD_PASSWORD: o.password }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-20_000); });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`pyftpd_tls.py exited (${code}) before listening: ${stderr}`)));
  });
  return { port, stop: () => stopAll(child) };
}
