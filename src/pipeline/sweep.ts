/**
 * Temporary files a failed run left at its destination: the `append` file's first batch, a batch
 * file or an uploaded file under its temporary name, a sidecar being written. Each is under a
 * name ending in TEMP_SUFFIX and is never read by anyone; a run that stopped before renaming it
 * leaves it behind. The next run on the destination removes them, right after it opens its
 * target and before it writes anything, and says how many and how large.
 *
 * Only the run's own destination is swept: for `append`, the temporaries of that one file (other
 * files in its folder may belong to other runs); for `batches` and `files`, the folder. The
 * destination's lease (taken before the target opens) keeps a live writer of the same
 * destination away, so nothing swept is in use. S3 `append` keeps its journal under `<key>.fur/`
 * and cleans it itself; it is not swept here.
 */
import { posix } from 'node:path';
import { SIDECAR_SUFFIX } from '../index/kerchunk.js';
import type { Destination } from '../transport/destination.js';
import { TEMP_SUFFIX } from './batches.js';

export interface Swept {
  files: number;
  bytes: number;
}

export interface SweepOptions {
  /** called now and then while a long sweep goes on (removed so far, of how many) */
  progress?: (done: number, of: number) => void;
  /** how often progress is reported, ms */
  progressEveryMs?: number;
}

/** stats and removals in flight at once: a slow server's round trips overlap */
const IN_FLIGHT = 8;

/** The temporaries of one destination: `path` is the append file, or the batches/files folder. */
export async function temporaries(dest: Destination, method: string, path: string): Promise<string[]> {
  if (method === 'append') {
    const dir = posix.dirname(path);
    const base = posix.basename(path);
    // the file under its temporary name (see AppendTarget.append) and its sidecar's (stageSidecar)
    return [`.${base}${TEMP_SUFFIX}`, `.${base}${SIDECAR_SUFFIX}${TEMP_SUFFIX}`].map((n) => posix.join(dir, n));
  }
  const names = await dest.list(path);
  return names.filter((n) => n.endsWith(TEMP_SUFFIX)).map((n) => posix.join(path, n));
}

/** Remove a destination's temporaries (see the module comment). */
export async function sweepTemporaries(dest: Destination, method: string, path: string, opts: SweepOptions = {}): Promise<Swept> {
  if (method === 'append' && dest.url.startsWith('s3://')) return { files: 0, bytes: 0 };
  const candidates = await temporaries(dest, method, path);
  const swept: Swept = { files: 0, bytes: 0 };
  let done = 0;
  let reportedAt = Date.now();
  const every = opts.progressEveryMs ?? 1000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const p = candidates[next++]!;
      const st = await dest.stat(p);
      if (st && !st.isDirectory) {
        await dest.remove(p);
        swept.files++;
        swept.bytes += st.size;
      }
      done++;
      if (opts.progress && Date.now() - reportedAt >= every && done < candidates.length) {
        reportedAt = Date.now();
        opts.progress(done, candidates.length);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, candidates.length) }, worker));
  return swept;
}
