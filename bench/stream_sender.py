"""The detector of bench/stream-drain.ts: one series pushed as fast as the receiver takes it.

  stream_sender.py send FORMAT ROWS COLS FRAMES    binds PUSH on 127.0.0.1, prints the port, waits
                                                    for a receiver to connect (prints "connected")
                                                    and for "go" on stdin, then sends; prints
                                                    {"first": t, "last": t} (time.time()) at the end
  stream_sender.py check FILE ROWS COLS FRAMES     what h5py reads back: a JSON line

FORMAT eiger (DECTRIS stream v1, encoding '<', header_detail basic) or plain; frames uint16.
Frame n is BASE + 7n (uint16, wrapping): one vector add per frame, so the sender is not what
limits the rate, and every frame differs from the others.
"""
import json
import sys
import time

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message


def base(rows, cols):
    return ((np.arange(rows * cols, dtype=np.uint64) * 31) % 65536).astype('<u2').reshape(rows, cols)


def frame(b, n):
    return b + np.uint16((7 * n) % 65536)


def send(fmt, rows, cols, frames):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    # a few frames queued here: what waits is in the receiver's queue (its high-water mark), as
    # with a detector whose own buffer is small
    sock.setsockopt(zmq.SNDHWM, 8)
    monitor = sock.get_monitor_socket(zmq.EVENT_ACCEPTED)
    port = sock.bind_to_random_port('tcp://127.0.0.1')
    print(port, flush=True)
    recv_monitor_message(monitor)
    print('connected', flush=True)
    sys.stdin.readline()
    b = base(rows, cols)
    j = lambda v: json.dumps(v).encode()
    first = time.time()
    if fmt == 'eiger':
        sock.send_multipart([j({'htype': 'dheader-1.0', 'series': 1, 'header_detail': 'basic'}),
                             j({'nimages': frames, 'ntrigger': 1, 'x_pixels_in_detector': cols, 'y_pixels_in_detector': rows})])
    size = rows * cols * 2
    for n in range(frames):
        data = frame(b, n)
        if fmt == 'eiger':
            sock.send_multipart([
                j({'htype': 'dimage-1.0', 'series': 1, 'frame': n, 'hash': ''}),
                j({'htype': 'dimage_d-1.0', 'shape': [cols, rows], 'type': 'uint16', 'encoding': '<', 'size': size}),
                data,
                j({'htype': 'dconfig-1.0', 'start_time': n, 'stop_time': n + 1, 'real_time': 1}),
            ], copy=False)
        else:
            sock.send_multipart([j({'frame': n, 'shape': [rows, cols], 'dtype': 'uint16'}), data], copy=False)
    sock.send_multipart([j({'htype': 'dseries_end-1.0', 'series': 1}) if fmt == 'eiger' else j({'end': True})])
    last = time.time()
    print(json.dumps({'first': first, 'last': last}), flush=True)
    sock.disable_monitor()
    monitor.close()
    sock.close(linger=-1)
    ctx.term()


def check(path, rows, cols, frames):
    """Every frame equal to what was sent, in order; the frames dataset's storage as h5py sees it."""
    import h5py
    with h5py.File(path, 'r') as f:
        # fur's NeXus file: /data is a link to /entry/data/data
        link = f.get('/data', getlink=True)
        data = f[link.path if isinstance(link, h5py.SoftLink) else '/data']
        b = base(rows, cols)
        equal = data.shape == (frames, rows, cols) and all(np.array_equal(data[n], frame(b, n)) for n in range(frames))
        return json.dumps({'shape': list(data.shape), 'dtype': str(data.dtype), 'equal': bool(equal),
                           'chunks': list(data.chunks or []), 'filters': sorted(data._filters)})


if __name__ == '__main__':
    what, rest = sys.argv[1], sys.argv[2:]
    if what == 'send':
        send(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    else:
        print(check(rest[0], int(rest[1]), int(rest[2]), int(rest[3])))
