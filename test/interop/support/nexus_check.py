#!/usr/bin/python3
"""What readers that know NeXus, netCDF and HDF5's conventions make of a fur file, as JSON.

    nexus_check.py FILE EXPECTED.npy

EXPECTED.npy holds the frames the file must hold. Prints one JSON object:
  attrs        every object's attribute count as libhdf5 gives it (len) and as listed, by path
  silx         the default NXdata silx finds: its signal's path, whether silx calls it valid,
               and whether the signal equals the expected frames
  xarray       the h5netcdf engine on /entry/data, without phony_dims: the frames' dims, values
               equal, the frame coordinate
  netcdf       netCDF-C (netCDF4-python) on the whole file: dims of /entry/data/data and of /data,
               values equal
  h5py_dims    the scales h5py's dims API finds on each axis of /entry/data/data, and whether
               H5DS calls each attached (REFERENCE_LIST agrees)
"""
import json
import sys

import h5py
import numpy as np


def attr_counts(path):
    out = {}
    with h5py.File(path, 'r') as f:
        def visit(name, obj):
            out['/' + name] = [len(obj.attrs), len(list(obj.attrs))]
        out['/'] = [len(f.attrs), len(list(f.attrs))]
        f.visititems(visit)
    return out


def main():
    path, expected_path = sys.argv[1:3]
    expected = np.load(expected_path)
    out = {'attrs': attr_counts(path)}

    import silx.io
    from silx.io.nxdata import get_default
    with silx.io.open(path) as sf:
        d = get_default(sf)
        out['silx'] = None if d is None else {
            'signal': d.signal.name, 'valid': bool(d.is_valid),
            'equal': bool(np.array_equal(d.signal[()], expected)), 'interpretation': d.interpretation,
        }

    import xarray as xr
    with xr.open_dataset(path, engine='h5netcdf', group='/entry/data') as ds:
        out['xarray'] = {
            'dims': list(ds['data'].dims), 'equal': bool(np.array_equal(ds['data'].values, expected)),
            'frame': [int(x) for x in ds['frame'].values], 'variables': sorted(ds.variables),
        }

    import netCDF4
    with netCDF4.Dataset(path) as n:
        v = n['entry/data'].variables['data']
        out['netcdf'] = {
            'dims': list(v.dimensions), 'root_dims': list(n.variables['data'].dimensions),
            'equal': bool(np.array_equal(np.asarray(v[:]), expected)),
        }

    with h5py.File(path, 'r') as f:
        d = f['/entry/data/data']
        out['h5py_dims'] = [[s.name for s in dim.values()] for dim in d.dims]
        out['h5ds_attached'] = [bool(h5py.h5ds.is_attached(d.id, dim[0].id, i)) for i, dim in enumerate(d.dims)]
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
