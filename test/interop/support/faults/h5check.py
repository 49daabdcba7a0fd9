"""
A long-running h5py (HDF5 1.10.8) reader for the fault-injection harness: it opens fur's files
at any moment — while fur is down after a fault, or while it writes — and answers what they
hold, so hundreds of checks per run cost no interpreter start each.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
  request:  {"id": 7, "files": ["/path/a.h5", ...], "dataset": "/data"}
  answer:   {"id": 7, "files": [{"path": ..., "ok": true, "rows": N, "dtype": "<u2", "shape": [N, 16, 16],
             "names": [...], "pages": [...], "hashes": ["sha256 hex of each frame", ...],
             "badSha": [rows whose /frame_sha256 differs from the frame]} | {"path": ..., "ok": false, "error": "..."}]}
Only rows below /data's extent count: per-frame datasets may be published ahead of the frames.
"""
import hashlib
import json
import sys

import h5py
import numpy as np


def sibling(dataset, name):
    return dataset[: dataset.rfind('/')] + '/' + name


def describe(path, dataset):
    with h5py.File(path, 'r') as f:
        if dataset not in f:
            # created, but no batch committed yet: a valid file without frames
            list(f.keys())
            return {'path': path, 'ok': True, 'rows': 0, 'dtype': None, 'shape': [0], 'names': [], 'pages': [],
                    'hashes': [], 'badSha': []}
        # in a NeXus file /data links to /entry/data/data, beside which the per-frame datasets are
        link = f.get(dataset, getlink=True)
        if isinstance(link, h5py.SoftLink):
            dataset = link.path
        d = f[dataset]
        n = int(d.shape[0])
        names_ds = f[sibling(dataset, 'frame_name')]
        pages_ds = f[sibling(dataset, 'frame_page')]
        if names_ds.shape[0] < n or pages_ds.shape[0] < n:
            raise ValueError('per-frame datasets shorter than %s: %d names, %d pages, %d frames'
                             % (dataset, names_ds.shape[0], pages_ds.shape[0], n))
        names = [x.decode('utf-8') if isinstance(x, bytes) else str(x) for x in names_ds[:n]]
        pages = [int(p) for p in pages_ds[:n]]
        vlen = h5py.check_vlen_dtype(d.dtype)
        hashes = []
        if n:
            rows = d[:n]
            for fr in rows:
                b = np.ascontiguousarray(fr, dtype=np.uint8).tobytes() if vlen is not None else np.ascontiguousarray(fr).tobytes()
                hashes.append(hashlib.sha256(b).hexdigest())
        bad = []
        sha_path = sibling(dataset, 'frame_sha256')
        if sha_path in f:
            rec = f[sha_path]
            if rec.shape[0] < n:
                raise ValueError('/frame_sha256 shorter than %s' % dataset)
            recorded = rec[:n]
            bad = [i for i in range(n) if bytes(recorded[i]).hex() != hashes[i]]
        return {'path': path, 'ok': True, 'rows': n, 'dtype': d.dtype.str if vlen is None else 'vlen:' + vlen.str,
                'shape': list(d.shape), 'names': names, 'pages': pages, 'hashes': hashes, 'badSha': bad}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        out = []
        for p in req['files']:
            try:
                out.append(describe(p, req.get('dataset', '/data')))
            except Exception as e:  # reported, not fatal: the harness decides what a failure means
                out.append({'path': p, 'ok': False, 'error': '%s: %s' % (type(e).__name__, e)})
        sys.stdout.write(json.dumps({'id': req['id'], 'files': out}) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
