/**
 * Which files belong to a capture, and in what order.
 *
 * Instruments name files in capture order but rarely zero-pad consistently, and mtimes lie
 * on network mounts, so order comes from the number in the name:
 *  - the sequence number is the last run of digits in the name, ignoring a final extension
 *    that contains a letter ('frame0007.tif' → 7, 'scan.003' → 3, 'run2_img10.h5' → 10);
 *  - numbers compare numerically at any length (timestamps like 20240101123000123 included);
 *  - equal numbers ('img_1', 'img_01') fall back to the name, by code unit;
 *  - names without a number come after all numbered ones, by name: a stray 'dark.tif' must
 *    not shift the position of every numbered frame.
 */
import { readdir } from 'node:fs/promises';
import { FurError } from '../errors.js';

/** Compiles a glob on base names: `*` any run, `?` one character, `[abc]` `[a-z]` `[!a-z]` a set, `\` escapes. */
export function compileGlob(pattern: string, setting = 'pattern'): (name: string) => boolean {
  const bad = (why: string): never => {
    throw new FurError('bad-pattern', `${setting}: '${pattern}' ${why}`, { setting, value: pattern });
  };
  if (pattern.length === 0) bad('is empty; use * to take every file');
  if (pattern.includes('/')) bad('matches file names inside the folder; give the folder separately and no / in the pattern');
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\') {
      if (i + 1 >= pattern.length) bad('ends with a lone \\');
      re += escape(pattern[++i]!);
    } else if (c === '[') {
      const negate = pattern[i + 1] === '!' || pattern[i + 1] === '^';
      const start = i + 1 + (negate ? 1 : 0);
      // A ']' right after '[' or '[!' is a member of the set, as in shell globs.
      const close = pattern.indexOf(']', start + 1);
      if (close < 0) bad('has a [ without a closing ]');
      const body = pattern.slice(start, close);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += escape(c);
  }
  const rx = new RegExp(`^${re}$`, 's');
  return (name) => rx.test(name);
}

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}

/** The sequence number as a digit string without leading zeros, or undefined when the name has none. */
export function sequenceNumber(name: string): string | undefined {
  const ext = /\.([^.]*[A-Za-z][^.]*)$/.exec(name);
  const stem = ext && ext.index > 0 ? name.slice(0, ext.index) : name;
  const runs = stem.match(/\d+/g);
  if (!runs) return undefined;
  return runs[runs.length - 1]!.replace(/^0+(?=\d)/, '');
}

export function compareNames(a: string, b: string): number {
  const na = sequenceNumber(a);
  const nb = sequenceNumber(b);
  if (na !== undefined && nb !== undefined) {
    const byNumber = na.length - nb.length || (na < nb ? -1 : na > nb ? 1 : 0);
    if (byNumber !== 0) return byNumber;
  } else if (na !== undefined) return -1;
  else if (nb !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortSequence(names: Iterable<string>): string[] {
  return [...names].sort(compareNames);
}

/** Names in `dir` that match `pattern`, in sequence order. Entries that are not files are left out. */
export async function listSequence(dir: string, pattern = '*'): Promise<string[]> {
  const match = compileGlob(pattern);
  const entries = await readDir(dir);
  return sortSequence(entries.filter((e) => (e.isFile() || e.isSymbolicLink()) && match(e.name)).map((e) => e.name));
}

export async function readDir(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new FurError('unreadable-dir', `${dir}: cannot list the folder (${code}); check the path and permissions`,
      { dir, code }, { cause: e });
  }
}
