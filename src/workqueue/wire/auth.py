"""Mutual challenge-response on a shared password. Pure: the callers supply the nonces.

Each side proves it knows the password with HMAC-SHA256 over both fresh nonces and its own role,
so a proof cannot be replayed, reflected back, or reused on another connection; the password itself
never travels. (CCTools does the same dance with SHA1.)
"""
from __future__ import annotations

import hashlib
import hmac
import os

NONCE_BYTES = 32


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def proof(password: bytes, role: str, own_nonce: bytes, peer_nonce: bytes) -> bytes:
    message = role.encode() + b"\0" + own_nonce + b"\0" + peer_nonce
    return hmac.new(password, message, hashlib.sha256).digest()


def manager_proof(password: bytes, manager_nonce: bytes, worker_nonce: bytes) -> bytes:
    return proof(password, "manager", manager_nonce, worker_nonce)


def worker_proof(password: bytes, worker_nonce: bytes, manager_nonce: bytes) -> bytes:
    return proof(password, "worker", worker_nonce, manager_nonce)


def status_proof(password: bytes, client_nonce: bytes, manager_nonce: bytes) -> bytes:
    return proof(password, "status", client_nonce, manager_nonce)


def peer_proof(key: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    return proof(key, "peer", client_nonce, server_nonce)


def verify(expected: bytes, received: bytes) -> bool:
    return hmac.compare_digest(expected, received)


def read_password_file(path: str) -> bytes:
    """The file's content, verbatim but for one trailing newline (as editors add)."""
    with open(path, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise ValueError(f"password file {path!r} is empty")
    return data
