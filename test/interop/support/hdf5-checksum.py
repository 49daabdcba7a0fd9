#!/usr/bin/python3
"""HDF5's own checksums, for comparing fur's: the H5_checksum_lookup3 and H5_checksum_fletcher32
of the libhdf5 that h5py loaded (Debian: 1.10.8), called through ctypes.

    stdin:  JSON [{"data": <base64>, "initval": N}, ...]
    stdout: JSON {"library": "<path>", "results": [{"lookup3": N, "fletcher32": N}, ...]}
"""
import base64
import ctypes
import json
import sys

import h5py  # noqa: F401 — loads the HDF5 library whose functions we call


def loaded_libhdf5():
    with open('/proc/self/maps') as maps:
        for line in maps:
            path = line.split()[-1]
            name = path.rsplit('/', 1)[-1]
            if name.startswith('libhdf5') and '_hl' not in name and '.so' in name:
                return path
    raise SystemExit('libhdf5 is not loaded')


def main():
    path = loaded_libhdf5()
    lib = ctypes.CDLL(path)
    lookup3 = lib.H5_checksum_lookup3
    lookup3.restype = ctypes.c_uint32
    lookup3.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32]
    fletcher32 = lib.H5_checksum_fletcher32
    fletcher32.restype = ctypes.c_uint32
    fletcher32.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    out = []
    for item in json.load(sys.stdin):
        data = base64.b64decode(item['data'])
        buf = ctypes.create_string_buffer(data, max(1, len(data)))
        out.append({'lookup3': lookup3(buf, len(data), item.get('initval', 0)), 'fletcher32': fletcher32(buf, len(data))})
    json.dump({'library': path, 'results': out}, sys.stdout)


if __name__ == '__main__':
    main()
