/**
 * Debian packages unpacked instead of installed: servers that conflict with others the interop
 * tier installs (ProFTPD and pure-ftpd both conflict with vsftpd as packages) are fetched with
 * `apt-get download` and unpacked with `dpkg-deb -x` into a folder of their own, once per package
 * version, and run from there. Needs only an `apt-get update`d machine; their shared libraries
 * must be installed (they are in `.ci/run`'s PACKAGES).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where unpacked packages are kept between runs (one folder per set of package versions). */
const CACHE = join(tmpdir(), 'fur-interop-debian');

/**
 * The packages, unpacked into one folder (the root of their file tree), downloaded the first time.
 * Several test files may ask at once: each unpacks apart and the first to finish names the folder.
 */
export function unpackDebian(packages: readonly string[]): string {
  const versions = packages.map((p) => {
    const v = /^Version: (.+)$/m.exec(execFileSync('apt-cache', ['show', '--no-all-versions', p], { encoding: 'utf8' }))?.[1];
    if (!v) throw new Error(`apt-cache knows no package ${p}: run apt-get update`);
    return `${p}_${v.replace(/[^\w.+-]/g, '_')}`;
  });
  const root = join(CACHE, versions.join('+'));
  if (existsSync(root)) return root;
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, '.unpacking-'));
  try {
    // apt's download sandbox user cannot write into a private temporary folder: no warning wanted
    execFileSync('apt-get', ['-q', '-o', 'APT::Sandbox::User=root', 'download', ...packages], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    const tree = join(work, 'root');
    for (const deb of readdirSync(work).filter((n) => n.endsWith('.deb'))) execFileSync('dpkg-deb', ['-x', join(work, deb), tree]);
    try {
      renameSync(tree, root);
    } catch (e) {
      // another test file unpacked the same versions first
      if (!existsSync(root)) throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return root;
}

/** Shared libraries `binary` needs that the machine lacks (for a message naming what to install). */
export function missingLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...out.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
}
