"""A detector's data stream for fur stream: binds a ZeroMQ PUSH socket on 127.0.0.1 (an ephemeral
port, printed as the first line of stdout), then sends one series as fast as the socket takes it.

  zmq_sender.py FORMAT ENCODING DTYPE ROWS COLS FRAMES [SKIP]

FORMAT eiger (DECTRIS stream v1) or plain; ENCODING <, lz4<, bs16-lz4< or bs32-lz4< (eiger only);
SKIP a frame number left out. Frame n holds (n * 7919 + p * 31) mod 2**bits at pixel p, as
check_frames() in this file expects."""
import json
import struct
import sys

import numpy as np
import zmq


# what the detector says about itself in the series header (header_detail all), beside its size
CONFIG = {'beam_center_x': 20.5, 'beam_center_y': 12.0, 'detector_distance': 0.125, 'wavelength': 0.9763, 'count_time': 0.001,
          'x_pixel_size': 7.5e-05, 'sensor_thickness': 0.00045, 'description': 'Dectris EIGER2 Si 4M', 'trigger_mode': 'ints'}


def frame(n, dtype, rows, cols):
    p = np.arange(rows * cols, dtype=np.uint64)
    bits = np.dtype(dtype).itemsize * 8
    return ((n * 7919 + p * 31) % (1 << bits)).astype(dtype).reshape(rows, cols)


def blob(a, encoding):
    raw = a.astype(a.dtype.newbyteorder('<')).tobytes()
    if encoding == '<':
        return raw
    if encoding == 'lz4<':
        import lz4.block
        return lz4.block.compress(raw, store_size=False)
    # bitshuffle + LZ4 with the header HDF5's filter 32008 reads: bytes (u64 BE), block bytes (u32 BE)
    import bitshuffle
    block = 1024
    body = bitshuffle.compress_lz4(a.reshape(-1), block).tobytes()
    return struct.pack('>QI', len(raw), block * a.dtype.itemsize) + body


def main():
    fmt, encoding, dtype, rows, cols, frames = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    skip = int(sys.argv[7]) if len(sys.argv) > 7 else -1
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    port = sock.bind_to_random_port('tcp://127.0.0.1')
    print(port, flush=True)
    j = lambda v: json.dumps(v).encode()
    series = 1
    if fmt == 'eiger':
        config = {'nimages': frames, 'ntrigger': 1, 'x_pixels_in_detector': cols, 'y_pixels_in_detector': rows}
        sock.send_multipart([j({'htype': 'dheader-1.0', 'series': series, 'header_detail': 'all'}), j({**config, **CONFIG})])
    for n in range(frames):
        if n == skip:
            continue
        data = blob(frame(n, dtype, rows, cols), encoding)
        if fmt == 'eiger':
            sock.send_multipart([
                j({'htype': 'dimage-1.0', 'series': series, 'frame': n, 'hash': ''}),
                j({'htype': 'dimage_d-1.0', 'shape': [cols, rows], 'type': dtype, 'encoding': encoding, 'size': len(data)}),
                data,
                j({'htype': 'dconfig-1.0', 'start_time': n, 'stop_time': n + 1, 'real_time': 1}),
            ])
        else:
            sock.send_multipart([j({'frame': n, 'shape': [rows, cols], 'dtype': dtype}), data])
    sock.send_multipart([j({'htype': 'dseries_end-1.0', 'series': series}) if fmt == 'eiger' else j({'end': True})])
    sock.close(linger=-1)
    ctx.term()


def check_frames(path, dtype, rows, cols, numbers):
    """What h5py reads from a file fur stored, compared with the frames sent: a JSON line."""
    import h5py
    with h5py.File(path, 'r') as f:
        # /data, or in a NeXus file the link to /entry/data/data, beside which the per-frame datasets are
        link = f.get('/data', getlink=True)
        at = link.path if isinstance(link, h5py.SoftLink) else '/data'
        data = f[at]
        names = [n.decode() if isinstance(n, bytes) else n for n in f[at[:at.rfind('/')] + '/frame_name'][:]]
        filters = data._filters
        equal = data.shape == (len(numbers), rows, cols) and all(
            np.array_equal(data[i], frame(n, dtype, rows, cols)) for i, n in enumerate(numbers))
        out = {'shape': list(data.shape), 'dtype': str(data.dtype), 'equal': bool(equal),
               'names': names == ['frame_%06d' % n for n in numbers], 'filters': sorted(filters)}
        if 'entry/instrument/detector/distance' in f:
            out['detector'] = detector(f, numbers)
        return json.dumps(out)


def detector(f, numbers):
    """The NeXus fields fur wrote from the header's configuration and each frame's dconfig, as h5py reads them."""
    text = lambda v: v.decode() if isinstance(v, bytes) else v
    def field(path):
        ds = f[path]
        v = ds[()]
        return [text(v.item() if hasattr(v, 'item') else v), text(ds.attrs.get('units'))]
    inst = 'entry/instrument/'
    fields = {p: field(inst + p) for p in ['detector/beam_center_x', 'detector/beam_center_y', 'detector/distance', 'detector/count_time',
                                          'detector/x_pixel_size', 'detector/sensor_thickness', 'detector/description',
                                          'beam/incident_wavelength', 'detector/detector_specific/trigger_mode']}
    classes = [text(f[inst + p].attrs['NX_class']) for p in ['detector', 'beam', 'detector/detector_specific']]
    start = f[inst + 'detector/start_time']
    return {'fields': fields, 'classes': classes, 'start_time': [list(start[:]) == [float(n) for n in numbers], text(start.attrs.get('units'))]}


if __name__ == '__main__':
    main()
