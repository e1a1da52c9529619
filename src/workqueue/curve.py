"""Encryption on request: ZeroMQ CURVE keys, and a ZAP authenticator that admits only known workers.

Keys are ZeroMQ certificate files: ``NAME.key`` (public) beside ``NAME.key_secret`` (both halves).
A master given ``curve_allowed`` admits only workers whose public key files sit in that folder.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Optional, Tuple

import zmq
import zmq.auth

if TYPE_CHECKING:  # imported where used: it imports asyncio, a tenth of a worker's start-up
    from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

HANDSHAKE_FAILURES = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


def keypair(secret_file: str) -> Tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` file, created with its ``.key`` twin if absent."""
    if not os.path.exists(secret_file):
        directory, name = os.path.split(os.path.abspath(secret_file))
        base = name[:-len(".key_secret")] if name.endswith(".key_secret") else name
        os.makedirs(directory, exist_ok=True)
        _, created = zmq.auth.create_certificates(directory, base)
        if os.path.abspath(created) != os.path.abspath(secret_file):
            os.replace(created, secret_file)
        os.chmod(secret_file, 0o600)
        log.info("created CURVE key pair %s", secret_file)
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise ValueError(f"{secret_file} holds no secret key (give the .key_secret file)")
    return public, secret


def public_key(path: str) -> bytes:
    public, _ = zmq.auth.load_certificate(path)
    return public


def serve(socket: zmq.Socket, secret_file: str) -> bytes:
    """Make ``socket`` a CURVE server; return its public key (what workers must be given)."""
    public, secret = keypair(secret_file)
    socket.curve_server = True
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    return public


def connect_as_client(socket: zmq.Socket, secret_file: str, server_key_file: str) -> None:
    public, secret = keypair(secret_file)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_serverkey = public_key(server_key_file)


def authenticator(ctx: zmq.Context, allowed_dir: Optional[str]) -> ThreadAuthenticator:
    """A running ZAP handler: only keys in ``allowed_dir`` (None: any key, encryption only)."""
    from zmq.auth.thread import ThreadAuthenticator
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("workqueue.zap"))
    auth.start()
    if allowed_dir is None:
        log.warning("CURVE without an allow-list: traffic is encrypted, but any key may connect")
        auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
    else:
        if not os.path.isdir(allowed_dir):
            auth.stop()
            raise FileNotFoundError(f"CURVE allow-list folder {allowed_dir!r} does not exist")
        auth.configure_curve(domain="*", location=allowed_dir)
    return auth
