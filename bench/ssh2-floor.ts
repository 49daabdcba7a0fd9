/**
 * What the SSH layer alone costs, next to OpenSSH: is fur's loopback rate limited by ssh2 or by
 * fur's own work per frame?
 *
 *   npx tsc -p tsconfig.json && node dist/bench/ssh2-floor.js [rounds]
 *
 * In alternating rounds against a private OpenSSH sshd on 127.0.0.1 (same cipher for all), each a
 * fresh process under GNU time: OpenSSH `sftp put` of the thesis capture as one file (~1 GB);
 * ssh2's SFTP client writing the same number of bytes from frames held in memory (32 requests of
 * 255 KiB in flight; no files read, no HDF5); and the same again with a SHA-256 of every frame
 * (565,068 bytes each, as fur hashes them), so the hash's share shows on its own.
 * Results: bench/results/ssh2-floor.{md,json}.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client as SshClient, SFTPWrapper } from 'ssh2';
import { startSshd } from '../harness/sshd.js';
import { prepare } from './datasets.js';
import { sftpPut, timed, type Measured, type Server } from './tools.js';
import { median } from './stats.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DATA = join(REPO, 'bench', 'data', 'throughput');
const RESULTS = join(REPO, 'bench', 'results');
const REQUEST = 255 * 1024;
const IN_FLIGHT = 32;
const FRAME = 434 * 434 * 3;
const FRAMES = 64;

/** The writer, run as its own process: argv host port user identity remotePath bytes hash(0|1) */
async function writer(argv: string[]): Promise<void> {
  const [host, port, user, identity, path, total, hash] = argv;
  const { Client } = createRequire(import.meta.url)('ssh2') as { Client: new () => SshClient };
  const c = new Client();
  await new Promise<void>((res, rej) => {
    c.on('ready', res).on('error', rej).connect({
      host, port: Number(port), username: user, privateKey: readFileSync(identity!),
      hostVerifier: () => true, algorithms: { cipher: ['aes128-gcm@openssh.com'] },
    });
  });
  const sftp = await new Promise<SFTPWrapper>((res, rej) => c.sftp((e, s) => (e ? rej(e) : res(s))));
  const handle = await new Promise<Buffer>((res, rej) => sftp.open(path!, 'w', (e, h) => (e ? rej(e) : res(h))));
  const bytes = Number(total);
  // 64 different frames (37 MB, more than the CPU's caches hold), sent in turn, as fur sends a
  // capture's frames; each one's SHA-256 taken as it goes out when asked
  const frames = Array.from({ length: FRAMES }, (_, i) => Buffer.alloc(FRAME, i + 1));
  const frameAt = (offset: number) => frames[Math.floor(offset / FRAME) % FRAMES]!;
  let sent = 0;
  let acked = 0;
  let hashedUpTo = 0;
  await new Promise<void>((res, rej) => {
    const next = (): void => {
      if (sent >= bytes) { if (acked >= bytes) res(); return; }
      const offset = sent;
      const len = Math.min(REQUEST, bytes - offset);
      sent += len;
      if (hash === '1') for (; hashedUpTo + FRAME <= sent; hashedUpTo += FRAME) createHash('sha256').update(frameAt(hashedUpTo)).digest();
      const at = offset % FRAME;
      const piece = at + len <= FRAME
        ? frameAt(offset).subarray(at, at + len)
        : Buffer.concat([frameAt(offset).subarray(at), frameAt(offset + FRAME - at).subarray(0, at + len - FRAME)]);
      sftp.write(handle, piece, 0, len, offset, (e) => { if (e) return rej(e); acked += len; next(); });
    };
    for (let i = 0; i < IN_FLIGHT; i++) next();
  });
  await new Promise<void>((res) => sftp.close(handle, () => res()));
  c.end();
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const log = (m: string) => console.log(m);
  const thesis = await prepare(DATA, 'thesis', log);
  const sshd = await startSshd({ logLevel: 'ERROR' });
  const knownHosts = join(sshd.dir, 'known_hosts_floor');
  writeFileSync(knownHosts, `[${sshd.host}]:${sshd.port} ${sshd.hostKeyLine}\n`);
  const server: Server = { host: sshd.host, sshdPort: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: knownHosts, root: sshd.root };
  const put = sftpPut(server).find((t) => t.shape === 'one file')!;
  const self = fileURLToPath(import.meta.url);
  const ssh2 = (hash: boolean) => (remote: string) => timed(process.execPath, [self, '--writer', sshd.host, String(sshd.port), sshd.user, sshd.identityFile, join(remote, 'floor.bin'), String(thesis.bytes), hash ? '1' : '0'], undefined, () => 0, thesis.bytes);
  const entries: [string, (remote: string) => Promise<Measured>][] = [
    ['OpenSSH sftp put (one file)', (remote) => put.run(thesis, sshd.port, remote, undefined)],
    ['ssh2 sftp.write from memory', ssh2(false)],
    ['ssh2 sftp.write from memory + SHA-256 per frame', ssh2(true)],
  ];
  const runs: { name: string; round: number; MBps: number; cpuPerGB: number; maxRssMB: number }[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < entries.length; k++) {
        const [name, go] = entries[(k + r) % entries.length]!;
        const remote = join(sshd.root, 'floor');
        rmSync(remote, { recursive: true, force: true });
        mkdirSync(remote);
        const m = await go(remote);
        const run = { name, round: r + 1, MBps: m.bytes / 1e6 / m.seconds, cpuPerGB: m.cpuSeconds / (m.bytes / 1e9), maxRssMB: m.maxRssKB / 1024 };
        runs.push(run);
        log(`round ${r + 1}/${rounds} ${name.padEnd(48)} ${run.MBps.toFixed(1).padStart(7)} MB/s ${run.cpuPerGB.toFixed(2).padStart(6)} CPU s/GB`);
      }
    }
  } finally {
    await sshd.dispose();
  }
  const rows = entries.map(([name]) => {
    const mine = runs.filter((x) => x.name === name);
    return { name, MBps: median(mine.map((x) => x.MBps)), cpuPerGB: median(mine.map((x) => x.cpuPerGB)), maxRssMB: median(mine.map((x) => x.maxRssMB)) };
  });
  const md = [
    '# The SSH layer alone, next to OpenSSH (bench/ssh2-floor.ts)',
    '',
    `${new Date().toISOString().slice(0, 10)}, medians of ${rounds} alternating rounds, loopback, aes128-gcm@openssh.com for all; ${thesis.bytes.toLocaleString('en')} bytes each.`,
    '',
    '| uploader | MB/s | CPU s/GB | peak RSS MB |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.MBps.toFixed(1)} | ${r.cpuPerGB.toFixed(2)} | ${r.maxRssMB.toFixed(0)} |`),
    '',
  ].join('\n');
  writeFileSync(join(RESULTS, 'ssh2-floor.md'), md);
  writeFileSync(join(RESULTS, 'ssh2-floor.json'), JSON.stringify({ rounds, bytes: thesis.bytes, rows, runs }, null, 2));
  log(md);
}

if (process.argv[2] === '--writer') await writer(process.argv.slice(3));
else await main();
