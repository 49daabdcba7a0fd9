"""The filewriter fur is measured against in bench/stream-drain.ts: h5py receiving a detector stream.

  h5py_filewriter.py ENDPOINT FILE [--sync-every BYTES] [--fletcher32] [--chunk-frames N]

A ZeroMQ PULL socket connected to ENDPOINT (receive high-water mark 16, as fur's); one series
in DECTRIS EIGER stream v1 (raw '<') or the plain format, recognised by its first message. Each
frame goes into a chunked, resizable dataset /data (chunks of N frames, default one), at the
index of its frame number. With --sync-every, the file is flushed and fsync'ed after that many bytes of frames
(fur's commits); --fletcher32 stores the Fletcher-32 checksum fur's append method stores by
default. Prints {"frames": n, "bytes": b, "first": t, "closed": t} (time.time()) when the file is
closed.
"""
import argparse
import json
import os
import time

import h5py
import numpy as np
import zmq


def main():
    p = argparse.ArgumentParser()
    p.add_argument('endpoint')
    p.add_argument('file')
    p.add_argument('--sync-every', type=int, default=0)
    p.add_argument('--fletcher32', action='store_true')
    p.add_argument('--chunk-frames', type=int, default=1)
    a = p.parse_args()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 16)
    sock.connect(a.endpoint)
    # a chunk cache that holds a chunk being filled frame by frame (h5py's default is 1 MiB)
    f = h5py.File(a.file, 'w', rdcc_nbytes=256 << 20)
    data = None
    frames = nbytes = unsynced = 0
    first = None
    while True:
        parts = sock.recv_multipart(copy=False)
        head = json.loads(parts[0].bytes)
        if first is None:
            first = time.time()
        if head.get('end') or head.get('htype') == 'dseries_end-1.0':
            break
        if head.get('htype') == 'dheader-1.0':
            continue
        if 'htype' in head:  # dimage-1.0, dimage_d-1.0, data, dconfig-1.0
            d = json.loads(parts[1].bytes)
            n, dtype, shape, blob = head['frame'], d['type'], d['shape'][::-1], parts[2]
        else:
            n, dtype, shape, blob = head['frame'], head['dtype'], head['shape'], parts[1]
        frame = np.frombuffer(blob.buffer, dtype=np.dtype(dtype).newbyteorder('<')).reshape(shape)
        if data is None:
            data = f.create_dataset('data', shape=(0, *shape), maxshape=(None, *shape), chunks=(a.chunk_frames, *shape),
                                    dtype=frame.dtype, fletcher32=a.fletcher32)
        if n >= data.shape[0]:
            data.resize(n + 1, axis=0)
        data[n] = frame
        frames += 1
        nbytes += frame.nbytes
        unsynced += frame.nbytes
        if a.sync_every and unsynced >= a.sync_every:
            f.flush()
            os.fsync(f.id.get_vfd_handle())
            unsynced = 0
    f.flush()
    os.fsync(f.id.get_vfd_handle())
    f.close()
    sock.close(linger=0)
    ctx.term()
    print(json.dumps({'frames': frames, 'bytes': nbytes, 'first': first, 'closed': time.time()}), flush=True)


if __name__ == '__main__':
    main()
