"""An FTPS server from pyftpdlib (Debian's python3-pyftpdlib, TLS through python3-openssl) for the
interop tier: explicit TLS required on logins and data connections, one user whose home is a
real folder, on 127.0.0.1 and a port the system picks. Prints "listening PORT" once it accepts.

usage: pyftpd_tls.py HOME CERT KEY USER   (the password is read from $FUR_PYFTPD_PASSWORD)
"""
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> None:
    home, cert, key, user = sys.argv[1:5]
    authorizer = DummyAuthorizer()
    # every right: list, retrieve, store, append, delete, rename, make directories, change times
    authorizer.add_user(user, os.environ['FUR_PYFTPD_PASSWORD'], home, perm='elradfmwMT')
    handler = TLS_FTPHandler
    handler.authorizer = authorizer
    handler.certfile = cert
    handler.keyfile = key
    handler.tls_control_required = True
    handler.tls_data_required = True
    handler.masquerade_address = None
    server = FTPServer(('127.0.0.1', 0), handler)
    server.max_cons = 64
    print(f'listening {server.address[1]}', flush=True)
    server.serve_forever(handle_exit=True)


if __name__ == '__main__':
    main()
