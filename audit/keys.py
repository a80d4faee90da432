"""The checkpoint signing key over its life: current key, retired public keys, rotation.

The current private key lives in one PEM file. A rotation keeps the old key's *public* half
beside it, in ``<key file stem>-retired/<key id>.pem``, so that every checkpoint it signed
still verifies; the old private key is not kept. The rotation itself is an audit event
(``audit.key.rotated``) that the old key signs a checkpoint over before the new key replaces
it (qms.cli_admin: ``qms audit rotate-key``): verifiers accept a key other than the first
only when so handed over (audit.succession). A retired public key planted in the folder
therefore does not make a swapped-in key acceptable.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from audit.checkpoints import fsync_directory, key_id, private_pem
from audit.succession import ROTATION_ACTION  # noqa: F401  (the rotation's event)


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
def rotation_lock(key_path: Path, on_wait: Callable[[], None] = lambda: None
                  ) -> Iterator[None]:
    """One rotation at a time per key file: a second ``qms audit rotate-key`` waits here and
    then reads the key the first one installed. Two rotations from the same old key would
    each install a new key, and the first new key, overwritten and never filed as retired,
    would leave its checkpoints unverifiable. (An exclusive flock, released by the kernel
    if the process dies.)"""
    key_path = Path(key_path)
    with open(key_path.with_name(f".{key_path.name}.rotation-lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()  # say so: the other rotation may be waiting at its password prompt
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_signing_key() -> Ed25519PrivateKey:
    """The next key: generated, held in memory until install_key makes it current."""
    return Ed25519PrivateKey.generate()


def install_key(key_path: Path, current: Ed25519PrivateKey, new_key: Ed25519PrivateKey
                ) -> None:
    """Make ``new_key`` the current key: the current key's public half is filed as retired
    first, then the new key replaces the key file atomically.

    Call it only after the rotation event is committed and the current key has signed a
    checkpoint over it: a key installed otherwise signs checkpoints that no verifier
    accepts. A crash before this leaves the old key current and the new one unused.
    """
    key_path = Path(key_path)
    _retire(current.public_key(), key_path)
    _replace_key_file(key_path, private_pem(new_key))


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
