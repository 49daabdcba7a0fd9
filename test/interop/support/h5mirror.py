#!/usr/bin/python3
"""Write, with h5py (HDF5 1.10.8), a file holding the same groups, datasets, values, attributes,
soft links and dimension scales as another: the reference a fur file is compared with by h5diff.

    h5mirror.py SOURCE TARGET

Everything is written anew through libhdf5 (nothing is copied as bytes): datasets with their
values and dtypes, attributes with their exact HDF5 types, soft links as soft links, and
dimension scales through h5py's own H5DS calls (make_scale, attach_scale), never by copying
DIMENSION_LIST or REFERENCE_LIST. (H5DS refuses to attach scales to a dataset already marked
CLASS=IMAGE, so that attribute is written after them.)
"""
import sys

import h5py
import numpy as np

SCALE_ATTRS = {'DIMENSION_LIST', 'REFERENCE_LIST', 'CLASS', 'NAME'}


def copy_attrs(src, dst, is_scale, only=None):
    for name in src.attrs:
        if only is not None and name not in only:
            continue
        if name in ('DIMENSION_LIST', 'REFERENCE_LIST') or (is_scale and name in ('CLASS', 'NAME')):
            continue
        # H5DS attaches no scale to a dataset marked CLASS=IMAGE: that attribute follows the scales
        if only is None and name == 'CLASS' and 'DIMENSION_LIST' in src.attrs:
            continue
        aid = src.attrs.get_id(name)
        tid = aid.get_type()
        space = aid.get_space()
        value = np.empty(aid.shape, dtype=aid.dtype) if aid.shape is not None else None
        aid.read(value, mtype=tid)
        new = h5py.h5a.create(dst.id, name.encode('utf-8'), tid, space)
        new.write(value, mtype=tid)


def main():
    source, target = sys.argv[1:3]
    with h5py.File(source, 'r') as f, h5py.File(target, 'w') as g:
        links, scales, attached = [], [], []

        def visit(path, group_src, group_dst):
            copy_attrs(group_src, group_dst, False)
            for name in group_src:
                link = group_src.get(name, getlink=True)
                child = f'{path.rstrip("/")}/{name}'
                if isinstance(link, h5py.SoftLink):
                    links.append((child, link.path))
                    continue
                obj = group_src[name]
                if isinstance(obj, h5py.Group):
                    visit(child, obj, group_dst.create_group(name))
                    continue
                is_scale = obj.attrs.get('CLASS') == b'DIMENSION_SCALE'
                dst = group_dst.create_dataset(name, shape=obj.shape, maxshape=obj.maxshape, dtype=obj.dtype,
                                               chunks=obj.chunks if obj.chunks is not None or obj.maxshape != obj.shape else None)
                # a dimension-only scale holds no values: fur writes none, and so does this copy
                if not (is_scale and obj.attrs.get('NAME', b'').startswith(b'This is a netCDF dimension')):
                    dst[()] = obj[()]
                copy_attrs(obj, dst, is_scale)
                if is_scale:
                    scales.append((child, obj.attrs['NAME'].decode('utf-8')))
                if 'REFERENCE_LIST' in obj.attrs:
                    # in the scale's own order, so both files list the same entries alike
                    attached.extend((f[ref].name, int(dim), child) for ref, dim in obj.attrs['REFERENCE_LIST'])

        visit('/', f, g)
        for path, name in scales:
            g[path].make_scale(name)
        for path, dim, scale in attached:
            g[path].dims[dim].attach_scale(g[scale])
        for path in sorted({p for p, _, _ in attached}):
            copy_attrs(f[path], g[path], False, only={'CLASS'})
        for path, target_path in links:
            g[path] = h5py.SoftLink(target_path)


if __name__ == '__main__':
    main()
