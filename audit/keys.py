"""The checkpoint signing key over its life: current key, retired public keys, rotation.

The current private key lives in one PEM file. A rotation keeps the old key's *public* half
beside it, in ``<key file stem>-retired/<key id>.pem``, so that every checkpoint it signed
still verifies; the old private key is not kept. The rotation itself is an audit event
(``audit.key.rotated``), written in the transaction that makes the new key current
(qms.cli_admin: ``qms audit rotate-key``).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from audit.checkpoints import fsync_directory, key_id, private_pem

ROTATION_ACTION = "audit.key.rotated"


def retired_folder(key_path: Path) -> Path:
    return key_path.with_name(f"{key_path.stem}-retired")


def public_keys(current: Ed25519PrivateKey, key_path: Path) -> dict[str, Ed25519PublicKey]:
    """{key id: public key} of the current key and of every retired one."""
    keys = {}
    folder = retired_folder(Path(key_path))
    for pem_file in sorted(folder.glob("*.pem")) if folder.is_dir() else ():
        public = serialization.load_pem_public_key(pem_file.read_bytes())
        if not isinstance(public, Ed25519PublicKey) or key_id(public) != pem_file.stem:
            raise ValueError(f"{pem_file} is not the Ed25519 public key {pem_file.stem}")
        keys[pem_file.stem] = public
    current_public = current.public_key()
    keys[key_id(current_public)] = current_public
    return keys


@contextmanager
def rotated_key(key_path: Path, current: Ed25519PrivateKey):
    """Make a new key current; yield it. Undone when the block raises.

    The old public key is filed as retired first (harmless if the rotation is undone), then
    the new key replaces the old file atomically. Run the block's database transaction
    inside: if its commit fails, the old key file is put back, so no key changes without
    its audit event.
    """
    key_path = Path(key_path)
    old_pem = key_path.read_bytes()
    _retire(current.public_key(), key_path)
    new_key = Ed25519PrivateKey.generate()
    _replace_key_file(key_path, private_pem(new_key))
    try:
        yield new_key
    except BaseException:
        _replace_key_file(key_path, old_pem)
        raise


def _retire(public: Ed25519PublicKey, key_path: Path) -> None:
    folder = retired_folder(key_path)
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{key_id(public)}.pem"
    if not target.exists():
        target.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
        fsync_directory(folder)


def _replace_key_file(path: Path, pem: bytes) -> None:
    """Write ``pem`` to a temporary file (mode 0600), fsync, and rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.rotate")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
