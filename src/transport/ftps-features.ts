/**
 * What an FTP server offers beyond RFC 959 (FEAT, RFC 2389), as far as fur uses it: MLST and MLSD
 * (RFC 3659), which say in one reply whether a path is a file or a folder, its size and time.
 * Without them a stat takes CWD (is it a folder?), SIZE and MDTM — and pure-ftpd delays every
 * failed CWD by 0.1 s more than the one before on that connection (a probe of a missing file is a
 * failed CWD), while a failed MLST costs nothing (measured: the 5th failed CWD answered after 0.4 s).
 * MLSD lists every entry (LIST hides dot files on some servers unless given `-a`, which others
 * take for a path: pyftpdlib) in a form meant for programs.
 */
import type { Client } from 'basic-ftp';
import type { RemoteStat } from './destination.js';

export interface FtpFeatures {
  /** MLST and MLSD, with the type and size facts */
  mlst: boolean;
  /** `OPTS MLST …` each connection sends when the server's default facts lack ones fur reads */
  mlstOpts?: string;
}

const WANTED = ['type', 'size', 'modify'];

/** Ask the server (FEAT) once per destination. */
export async function readFeatures(c: Client): Promise<FtpFeatures> {
  const feat = await c.features();
  const facts = feat.get('MLST');
  if (facts === undefined) return { mlst: false };
  // "type*;size*;modify*;perm;": a star marks the facts sent by default
  const offered = new Map(facts.split(';').filter(Boolean).map((f) => [f.replace(/\*$/, '').toLowerCase(), f.endsWith('*')]));
  if (!offered.has('type') || !offered.has('size')) return { mlst: false };
  const wanted = WANTED.filter((f) => offered.has(f));
  return { mlst: true, mlstOpts: wanted.every((f) => offered.get(f)) ? undefined : `OPTS MLST ${wanted.join(';')};` };
}

/** Set a new connection up for the features: the listing command, the MLST facts. */
export async function useFeatures(c: Client, f: FtpFeatures): Promise<void> {
  if (!f.mlst) return;
  c.availableListCommands = ['MLSD', 'LIST -a', 'LIST'];
  if (f.mlstOpts) await c.send(f.mlstOpts).catch(() => undefined);
}

/**
 * The stat in an MLST reply (`250-…\r\n type=file;size=12;modify=20261207171812; /path\r\n250 …`);
 * undefined for a type fur does not know (a symbolic link: the caller asks the old way, which follows it).
 */
export function parseMlst(reply: string): RemoteStat | undefined {
  const line = reply.split(/\r?\n/).find((l) => /^ ?[^ =;]+=[^;]*;/.test(l) && !/^\d{3}[ -]/.test(l));
  if (!line) return undefined;
  const facts = new Map<string, string>();
  for (const fact of line.trimStart().split(' ')[0]!.split(';')) {
    const eq = fact.indexOf('=');
    if (eq > 0) facts.set(fact.slice(0, eq).toLowerCase(), fact.slice(eq + 1));
  }
  const type = facts.get('type')?.toLowerCase();
  const mtimeMs = mlsxTime(facts.get('modify'));
  if (type === 'dir' || type === 'cdir' || type === 'pdir') return { size: 0, mtimeMs, isDirectory: true };
  const size = Number(facts.get('size'));
  if (type !== 'file' || !Number.isSafeInteger(size)) return undefined;
  return { size, mtimeMs, isDirectory: false };
}

/** `YYYYMMDDHHMMSS[.sss]` in UTC (RFC 3659 2.3) as ms since 1970, 0 when absent or unreadable. */
function mlsxTime(text: string | undefined): number {
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d{1,3}))?$/.exec(text ?? '');
  if (!m) return 0;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s, Number((m[7] ?? '0').padEnd(3, '0')));
}
