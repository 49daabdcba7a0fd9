#!/usr/bin/python3
"""Describe many HDF5 files in one run of h5py (HDF5 1.10.8), one JSON line per file.

    hdf5-batch.py FILE...          (or: hdf5-batch.py --stdin, one path per line)

Each line: {"file": path, "ok": true, "doc": <h5read.py's description>} or, when the file
does not open or an object does not read, {"file": path, "ok": false, "error": "<type>: <text>",
"stage": "open" | "read"}. Starting Python and importing h5py once for hundreds of files is
what keeps the property and cut-anywhere tests fast.
"""
import json
import os
import sys

os.environ.setdefault('HDF5_USE_FILE_LOCKING', 'FALSE')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py  # noqa: E402
from h5read import walk  # noqa: E402  (the shared description, so both oracles compare alike)


def describe(path):
    try:
        f = h5py.File(path, 'r')
    except Exception as e:  # noqa: BLE001 — any failure to open is the answer
        return {'file': path, 'ok': False, 'stage': 'open', 'error': f'{type(e).__name__}: {e}'}
    try:
        with f:
            objects = walk(f, None, True)
        doc = {'reader': f'h5py {h5py.version.version} / HDF5 {h5py.version.hdf5_version}', 'objects': objects}
        return {'file': path, 'ok': True, 'doc': doc}
    except Exception as e:  # noqa: BLE001
        return {'file': path, 'ok': False, 'stage': 'read', 'error': f'{type(e).__name__}: {e}'}


def main():
    paths = [l.strip() for l in sys.stdin if l.strip()] if sys.argv[1:] == ['--stdin'] else sys.argv[1:]
    for p in paths:
        sys.stdout.write(json.dumps(describe(p), allow_nan=False, separators=(',', ':')) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
