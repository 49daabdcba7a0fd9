#!/usr/bin/python3
"""Describe an HDF5 file as JSON, as seen by h5py (Debian: h5py 3.7 on HDF5 1.10.8).

This is one of fur's two oracles (the other is h5wasm, test/support/h5wasm.ts). Both
print the same structure so a test can compare them, and fur's own files, value by value:

  {
    "reader": "h5py 3.7.0 / HDF5 1.10.8",
    "objects": {                      # every object by absolute path, "/" first
      "/":   {"kind": "group", "members": [...], "attrs": {...}},
      "/x":  {"kind": "dataset", "dtype": "<u2", "shape": [3, 4], "maxshape": [null, 4],
              "chunks": [1, 4], "filters": [{"id": 2, "cd_values": [2]}, ...],
              "compression": "gzip", "compression_opts": 4, "shuffle": true,
              "fletcher32": true, "value": {...}, "attrs": {...}},
      "/s":  {"kind": "softlink", "target": "/x"},
      "/e":  {"kind": "extlink", "filename": "...", "path": "..."},
      "/c":  {"kind": "hardlink", "target": "/"}   # only for a group linked into itself
    }
  }

Dataset values ("value"), always in C order and flattened:
  numeric             {"kind": "bytes", "base64": <little-endian bytes>}
  fixed-length string {"kind": "strings", "items": [str, ...]}   (trailing NULs stripped)
  vlen string         {"kind": "strings", "items": [str, ...]}
  vlen of uint8       {"kind": "vlen-bytes", "items": [<base64>, ...]}
  other vlen          {"kind": "vlen", "base": "<u2", "items": [<base64 LE>, ...]}
  anything else       {"kind": "unsupported", "dtype": "..."}
Attributes: {"dtype", "shape", "value"}: value is a scalar (number or str) for a scalar
attribute, a flat C-order list otherwise, null for an empty one. Integers beyond 2**53
are written as decimal strings, non-finite floats as "NaN", "Infinity", "-Infinity" so
JSON.parse in node keeps them exact.

Options: --swmr (open with swmr=True), --dataset PATH (describe only that dataset),
--rows A:B (values of rows A..B-1 along the first axis only), --no-values.
"""
import argparse
import base64
import json
import math
import sys

import h5py
import numpy as np

SAFE_INT = 2 ** 53


def parse_rows(text):
    a, _, b = text.partition(':')
    return (int(a) if a else None, int(b) if b else None)


def b64(data):
    return base64.b64encode(bytes(data)).decode('ascii')


def le_bytes(arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == '>' or (arr.dtype.byteorder == '=' and sys.byteorder == 'big'):
        arr = arr.astype(arr.dtype.newbyteorder('<'))
    return arr.tobytes(order='C')


def json_number(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return v if -SAFE_INT <= v <= SAFE_INT else str(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return 'NaN'
        if math.isinf(v):
            return 'Infinity' if v > 0 else '-Infinity'
        return v
    return v


def to_text(v):
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).rstrip(b'\0').decode('utf-8')
    return str(v)


def describe_dtype(dt):
    """numpy dtype string plus what numpy's string does not say (string encoding, vlen base)."""
    out = {'dtype': dt.str}
    s = h5py.check_string_dtype(dt)
    if s is not None:
        out['string'] = {'encoding': s.encoding, 'vlen': s.length is None}
        return out
    base = h5py.check_vlen_dtype(dt)
    if base is not None:
        out['base'] = base.str
    return out


def describe_value(arr, dt):
    """Flattened C-order value of a dataset selection (arr: what h5py read)."""
    s = h5py.check_string_dtype(dt)
    if s is not None:
        flat = np.asarray(arr, dtype=object).reshape(-1) if arr.dtype.kind == 'O' else np.asarray(arr).reshape(-1)
        return {'kind': 'strings', 'items': [to_text(x) for x in flat]}
    base = h5py.check_vlen_dtype(dt)
    if base is not None:
        flat = np.asarray(arr, dtype=object).reshape(-1)
        if base == np.dtype('u1'):
            return {'kind': 'vlen-bytes', 'items': [b64(np.asarray(x, dtype='u1').tobytes()) for x in flat]}
        if base.kind in 'iuf':
            return {'kind': 'vlen', 'base': base.str, 'items': [b64(le_bytes(np.asarray(x, dtype=base))) for x in flat]}
        return {'kind': 'unsupported', 'dtype': dt.str}
    if dt.kind in 'iuf' and dt.fields is None and dt.subdtype is None:
        return {'kind': 'bytes', 'base64': b64(le_bytes(np.asarray(arr, dtype=dt)))}
    return {'kind': 'unsupported', 'dtype': dt.str}


def describe_reference_attr(obj, name):
    """Attributes holding object references (a dimension scale's DIMENSION_LIST, REFERENCE_LIST),
    as every oracle describes them: a sequence of references as the paths it names, joined by ',';
    a compound as its members' names and types, its value not compared. None for others."""
    aid = obj.attrs.get_id(name)
    tid = aid.get_type()
    cls = tid.get_class()
    shape = None if aid.shape is None else list(aid.shape)
    if cls == h5py.h5t.VLEN and tid.get_super().get_class() == h5py.h5t.REFERENCE:
        return {'dtype': '|O', 'base': 'ref', 'shape': shape,
                'value': [','.join(obj.file[r].name for r in refs) for refs in obj.attrs[name]]}
    if cls == h5py.h5t.REFERENCE:
        return {'dtype': 'ref', 'shape': shape, 'value': None}
    if cls == h5py.h5t.COMPOUND:
        members = []
        for i in range(tid.get_nmembers()):
            mt = tid.get_member_type(i)
            kind = 'ref' if mt.get_class() == h5py.h5t.REFERENCE else mt.dtype.str
            members.append(f'{tid.get_member_name(i).decode()}:{kind}')
        return {'dtype': f'compound({",".join(members)})', 'shape': shape, 'value': None}
    return None


def describe_attrs(obj):
    out = {}
    names = sorted(obj.attrs.keys())
    # len() is libhdf5's count (H5Oget_info), the one h5repack, h5copy and h5diff go by; keys()
    # walks the messages. A writer that leaves the count out loses every attribute in those tools.
    if len(obj.attrs) != len(names):
        raise ValueError(f'{obj.name}: HDF5 counts {len(obj.attrs)} attributes but lists {len(names)}: {names}')
    for name in names:
        ref = describe_reference_attr(obj, name)
        if ref is not None:
            out[name] = ref
            continue
        aid = obj.attrs.get_id(name)
        info = describe_dtype(aid.dtype)
        shape = aid.shape
        info['shape'] = None if shape is None else list(shape)
        v = obj.attrs[name]
        if isinstance(v, h5py.Empty):
            info['value'] = None
        elif shape is None or len(shape) == 0:
            if info.get('string') or isinstance(v, (bytes, np.bytes_, str)):
                info['value'] = to_text(v)
            elif isinstance(v, np.ndarray):
                info['value'] = json_number(v.reshape(-1)[0])
            else:
                info['value'] = json_number(v)
        else:
            flat = np.asarray(v).reshape(-1)
            if info.get('string'):
                info['value'] = [to_text(x) for x in flat]
            else:
                info['value'] = [json_number(x) for x in flat.tolist()]
        out[name] = info
    return out


def describe_dataset(ds, rows, with_values):
    dcpl = ds.id.get_create_plist()
    filters = []
    for i in range(dcpl.get_nfilters()):
        code, _flags, values, _name = dcpl.get_filter(i)
        filters.append({'id': int(code), 'cd_values': [int(v) for v in values]})
    out = {'kind': 'dataset'}
    out.update(describe_dtype(ds.dtype))
    out['shape'] = None if ds.shape is None else list(ds.shape)
    out['maxshape'] = None if ds.maxshape is None else [None if m is None else int(m) for m in ds.maxshape]
    out['chunks'] = None if ds.chunks is None else list(ds.chunks)
    out['filters'] = filters
    ids = [f['id'] for f in filters]
    out['compression'] = 'gzip' if 1 in ids else ds.compression
    out['compression_opts'] = ds.compression_opts
    out['shuffle'] = 2 in ids
    out['fletcher32'] = 3 in ids
    if with_values and ds.shape is not None:
        dt = ds.dtype
        if rows is not None and len(ds.shape) > 0:
            a, b = rows
            n = ds.shape[0]
            a = 0 if a is None else max(0, min(a, n))
            b = n if b is None else max(a, min(b, n))
            out['rows'] = [a, b]
            arr = ds[a:b]
        else:
            arr = ds[()]
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr, dtype=dt if dt.kind != 'O' else object)
        out['value'] = describe_value(arr, dt)
    out['attrs'] = describe_attrs(ds)
    return out


def walk(f, rows, with_values):
    objects = {}

    # A group reached again through one of its own descendants (a cycle of hard links) is
    # reported as a hardlink instead of being walked forever; h5wasm cannot see object
    # identity, so other multiply-linked objects are described at every path, as there.
    def visit(group, path, ancestors=()):
        members = sorted(group.keys())
        objects[path] = {'kind': 'group', 'members': members, 'attrs': describe_attrs(group)}
        ancestors = ancestors + ((group.id.__hash__(), group.name),)
        for name in members:
            child = path.rstrip('/') + '/' + name
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.SoftLink):
                objects[child] = {'kind': 'softlink', 'target': link.path}
                continue
            if isinstance(link, h5py.ExternalLink):
                objects[child] = {'kind': 'extlink', 'filename': link.filename, 'path': link.path}
                continue
            obj = group[name]
            if isinstance(obj, h5py.Group):
                key = obj.id.__hash__()
                loop = [name for (k, name) in ancestors if k == key]
                if loop:
                    objects[child] = {'kind': 'hardlink', 'target': loop[0]}
                else:
                    visit(obj, child, ancestors)
            elif isinstance(obj, h5py.Dataset):
                objects[child] = describe_dataset(obj, rows, with_values)
            else:
                objects[child] = {'kind': 'datatype', 'dtype': obj.dtype.str}

    visit(f['/'], '/')
    return objects


def main():
    p = argparse.ArgumentParser(description='Describe an HDF5 file as JSON (h5py oracle).')
    p.add_argument('file')
    p.add_argument('--swmr', action='store_true')
    p.add_argument('--dataset')
    p.add_argument('--rows', type=parse_rows)
    p.add_argument('--no-values', action='store_true')
    args = p.parse_args()
    with h5py.File(args.file, 'r', swmr=args.swmr) as f:
        if args.dataset:
            path = '/' + args.dataset.strip('/')
            ds = f[path]
            if not isinstance(ds, h5py.Dataset):
                raise SystemExit(f'{path} is not a dataset')
            objects = {path: describe_dataset(ds, args.rows, not args.no_values)}
        else:
            objects = walk(f, args.rows, not args.no_values)
    doc = {'reader': f'h5py {h5py.version.version} / HDF5 {h5py.version.hdf5_version}', 'objects': objects}
    json.dump(doc, sys.stdout, allow_nan=False, separators=(',', ':'))
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
