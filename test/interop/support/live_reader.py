#!/usr/bin/python3
"""A reader that watches an HDF5 dataset grow while something else writes it.

    live_reader.py FILE DATASET --expect-seed N [--swmr] [--stop-file PATH] ...

Loops until the stop file exists (then reads once more, so the final state is checked too):
each iteration learns the dataset's current length and checks every row it has not checked
yet against the shared pattern (pattern.py / test/support/pattern.ts). With --swmr the file
is opened once with swmr=True and the dataset refreshed each time, as a SWMR reader does;
without it (or with --reopen) the file is opened afresh each iteration.

Failures: a row that differs from the pattern, a dataset that shrinks, a wrong dtype, and
— once the file has opened once — an error opening or reading it (unless --tolerate-errors,
which counts those under "errors" instead). Before the first successful open, a missing or
not yet valid file is waited for.

Writes "rows N" to stderr whenever more rows become visible, and at the end one line of
JSON to stdout: {"iterations", "maxRowsSeen", "finalRows", "failures", "errors", "samples",
"opened", "timedOut", "seconds"}. Exit status 0 when there were no failures, else 1.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault('HDF5_USE_FILE_LOCKING', 'FALSE')  # the writer is not HDF5; never block it

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5py  # noqa: E402
import numpy as np  # noqa: E402
from pattern import pattern_rows  # noqa: E402

BLOCK_BYTES = 32 << 20


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('file')
    p.add_argument('dataset')
    p.add_argument('--expect-seed', type=int, required=True)
    p.add_argument('--swmr', action='store_true', help='open once with swmr=True and refresh()')
    p.add_argument('--reopen', action='store_true', help='open the file afresh every iteration')
    p.add_argument('--stop-file', help='stop once this exists (default FILE.stop)')
    p.add_argument('--interval', type=float, default=0.02, help='seconds between iterations')
    p.add_argument('--timeout', type=float, default=600, help='give up after this many seconds')
    p.add_argument('--recheck', action='store_true', help='re-check every visible row each iteration')
    p.add_argument('--tolerate-errors', action='store_true', help='open/read errors are not failures')
    p.add_argument('--max-samples', type=int, default=20)
    args = p.parse_args()

    stop_file = args.stop_file or args.file + '.stop'
    reopen = args.reopen or not args.swmr
    state = {'iterations': 0, 'maxRowsSeen': 0, 'finalRows': None, 'failures': 0, 'errors': 0, 'stale': 0,
             'samples': [], 'opened': False, 'timedOut': False}
    t0 = time.monotonic()
    checked = 0          # rows [0, checked) have been verified
    last_len = 0
    f = ds = None

    def note(kind, msg):
        state[kind] += 1
        if len(state['samples']) < args.max_samples:
            state['samples'].append(f'{kind.rstrip("s")}: {msg}')

    def close():
        nonlocal f, ds
        if f is not None:
            try:
                f.close()
            except Exception:
                pass
        f = ds = None

    def fresh_rows_match(a, b, row_bytes, want):
        try:
            with h5py.File(args.file, 'r') as g:
                again = np.asarray(g[args.dataset][a:b]).reshape(b - a, row_bytes)
            return bool((again == want).all())
        except Exception:  # noqa: BLE001 — a fresh open that fails proves nothing either way
            return False

    def problem(msg):
        # before the first successful open the writer may simply not have committed yet
        if not state['opened']:
            return
        note('errors' if args.tolerate_errors else 'failures', msg)

    final = False
    while True:
        if not final and os.path.exists(stop_file):
            final = True
        if not final and time.monotonic() - t0 > args.timeout:
            state['timedOut'] = True
            final = True
        state['iterations'] += 1
        try:
            if f is None:
                f = h5py.File(args.file, 'r', swmr=args.swmr)
                ds = f[args.dataset]
                state['opened'] = True
            else:
                ds.refresh()
            n = ds.shape[0]
            if ds.dtype != np.uint8:
                note('failures', f'dtype is {ds.dtype.str}, expected |u1')
                break
            row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) if len(ds.shape) > 1 else 1
            if n < last_len:
                note('failures', f'dataset shrank from {last_len} to {n} rows')
            last_len = n
            if n > state['maxRowsSeen']:
                state['maxRowsSeen'] = n
                sys.stderr.write(f'rows {n}\n')
                sys.stderr.flush()
            start = 0 if args.recheck else min(checked, n)
            step = max(1, BLOCK_BYTES // max(1, row_bytes))
            for a in range(start, n, step):
                b = min(n, a + step)
                got = np.asarray(ds[a:b]).reshape(b - a, row_bytes)
                want = pattern_rows(a, b - a, row_bytes, args.expect_seed)
                bad = np.nonzero((got != want).any(axis=1))[0]
                if bad.size and args.swmr and fresh_rows_match(a, b, row_bytes, want):
                    # the file holds the right rows; this SWMR handle read them from its caches
                    # (HDF5 1.10's refresh() does not reload v1 B-tree nodes): counted, not failed
                    note('stale', f'{bad.size} rows in [{a},{b}) read stale through the SWMR handle; a fresh open reads them right')
                    continue
                if bad.size:
                    r = a + int(bad[0])
                    note('failures', f'{bad.size} rows differ in [{a},{b}), first row {r}: '
                                     f'got {got[bad[0], :8].tolist()} want {want[bad[0], :8].tolist()}')
            checked = max(checked, n)
            if final:
                state['finalRows'] = n
        except Exception as e:  # noqa: BLE001 — any HDF5 error is what we are looking for
            problem(f'{type(e).__name__}: {e}')
            close()
        if reopen:
            close()
        if final:
            break
        time.sleep(args.interval)
    close()
    state['seconds'] = round(time.monotonic() - t0, 3)
    sys.stdout.write(json.dumps(state) + '\n')
    sys.stdout.flush()
    sys.exit(1 if state['failures'] else 0)


if __name__ == '__main__':
    main()
