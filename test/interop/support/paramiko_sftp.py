"""
An SFTP server built on Paramiko (python3-paramiko), the stack of archives such as ERDA, for
fur's interop tests. It serves the real file system with absolute paths (a session starts in
--root), admits one user with one public key, and announces what Paramiko announces: only
check-file, so no fsync@openssh.com, no limits@openssh.com, no statvfs@openssh.com.

    paramiko_sftp.py --port N --root DIR --host-key KEY --authorized-key KEY.pub [--mangle FROM:TO]

Listens on 127.0.0.1:N (0: any free port, printed as "PORT <n>") and serves until killed.

--mangle FROM:TO (hex): every write that carries the bytes FROM stores TO in their place (same
length) and still answers OK — a server that silently keeps other bytes than it was sent, for the
tests of fur's read-back before deleting a source.
"""
import argparse
import base64
import errno
import os
import socket
import sys
import threading

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import SFTP_OK


def fail(e):
    return SFTPServer.convert_errno(e.errno)


class Handle(SFTPHandle):
    """An open file: positional reads and writes on its descriptor."""

    def __init__(self, fd, flags, mangle):
        super().__init__(flags)
        self.fd = fd
        self.mangle = mangle

    def close(self):
        os.close(self.fd)

    def read(self, offset, length):
        try:
            return os.pread(self.fd, length, offset)
        except OSError as e:
            return fail(e)

    def write(self, offset, data):
        if self.mangle is not None and self.mangle[0] in data:
            data = data.replace(self.mangle[0], self.mangle[1])
        try:
            view = memoryview(data)
            while view:
                n = os.pwrite(self.fd, view, offset)
                view = view[n:]
                offset += n
        except OSError as e:
            return fail(e)
        return SFTP_OK

    def stat(self):
        try:
            return SFTPAttributes.from_stat(os.fstat(self.fd))
        except OSError as e:
            return fail(e)

    def chattr(self, attr):
        try:
            if attr.st_size is not None:
                os.ftruncate(self.fd, attr.st_size)
            if attr.st_mode is not None:
                os.fchmod(self.fd, attr.st_mode & 0o7777)
        except OSError as e:
            return fail(e)
        return SFTP_OK


class Files(SFTPServerInterface):
    """The file system as it is: paths are the server's own, relative ones start at --root."""

    def __init__(self, server, root, mangle):
        super().__init__(server)
        self.root = root
        self.mangle = mangle

    def real(self, path):
        return os.path.join(self.root, path)

    def open(self, path, flags, attr):
        mode = attr.st_mode & 0o7777 if attr is not None and attr.st_mode is not None else 0o644
        try:
            fd = os.open(self.real(path), flags | getattr(os, 'O_BINARY', 0), mode)
        except OSError as e:
            return fail(e)
        return Handle(fd, flags, self.mangle)

    def list_folder(self, path):
        try:
            out = []
            for name in os.listdir(self.real(path)):
                a = SFTPAttributes.from_stat(os.lstat(os.path.join(self.real(path), name)))
                a.filename = name
                out.append(a)
            return out
        except OSError as e:
            return fail(e)

    def stat(self, path):
        try:
            return SFTPAttributes.from_stat(os.stat(self.real(path)))
        except OSError as e:
            return fail(e)

    def lstat(self, path):
        try:
            return SFTPAttributes.from_stat(os.lstat(self.real(path)))
        except OSError as e:
            return fail(e)

    def remove(self, path):
        return self.call(os.remove, path)

    def rename(self, old, new):
        # SFTP v3: a rename onto an existing name is refused (as OpenSSH's sftp-server does)
        if os.path.lexists(self.real(new)):
            return SFTPServer.convert_errno(errno.EEXIST)
        return self.call(os.rename, old, new)

    def posix_rename(self, old, new):
        return self.call(os.rename, old, new)

    def mkdir(self, path, attr):
        return self.call(os.mkdir, path)

    def rmdir(self, path):
        return self.call(os.rmdir, path)

    def chattr(self, path, attr):
        try:
            if attr.st_size is not None:
                os.truncate(self.real(path), attr.st_size)
            if attr.st_mode is not None:
                os.chmod(self.real(path), attr.st_mode & 0o7777)
        except OSError as e:
            return fail(e)
        return SFTP_OK

    def canonicalize(self, path):
        return os.path.normpath(self.real(path))

    def call(self, fn, *paths):
        try:
            fn(*[self.real(p) for p in paths])
        except OSError as e:
            return fail(e)
        return SFTP_OK


class Login(paramiko.ServerInterface):
    def __init__(self, key):
        self.key = key

    def get_allowed_auths(self, username):
        return 'publickey'

    def check_auth_publickey(self, username, key):
        ok = key.get_name() == self.key.get_name() and key.asbytes() == self.key.asbytes()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == 'session' else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def serve(conn, host_key, client_key, root, mangle):
    t = paramiko.Transport(conn)
    t.add_server_key(host_key)
    t.set_subsystem_handler('sftp', SFTPServer, Files, root, mangle)
    try:
        t.start_server(server=Login(client_key))
    except (paramiko.SSHException, EOFError, OSError):
        t.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--root', required=True)
    p.add_argument('--host-key', required=True)
    p.add_argument('--authorized-key', required=True)
    p.add_argument('--mangle')
    a = p.parse_args()
    host_key = paramiko.Ed25519Key.from_private_key_file(a.host_key)
    client_key = paramiko.Ed25519Key(data=base64.b64decode(open(a.authorized_key).read().split()[1]))
    mangle = None
    if a.mangle:
        old, new = (bytes.fromhex(x) for x in a.mangle.split(':'))
        if len(old) != len(new) or not old:
            sys.exit('--mangle FROM:TO: two hex strings of the same length')
        mangle = (old, new)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', a.port))
    s.listen(100)
    print('PORT %d' % s.getsockname()[1], flush=True)
    while True:
        conn, _ = s.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, host_key, client_key, os.path.abspath(a.root), mangle), daemon=True).start()


if __name__ == '__main__':
    main()
