"""CURVE security: a key store with one key pair per agent plus the relay's, ZAP setup.

Layout of a key store directory (``p2pvar keys init DIR --agents ...``)::

    DIR/public_keys/<id>.key           public keys (the relay's host needs all of them)
    DIR/private_keys/<id>.key_secret   key pairs (each host needs only its agents' pairs)

The relay's sockets are CURVE servers; a ZAP handler (``zmq.auth`` thread,
:mod:`messaging.authenticator`) admits only the agents' public keys and stamps each
connection with the agent id the key belongs to (the frame's ``User-Id`` metadata), which
the relay compares with the routing id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from messaging.errors import SecurityError
from messaging.messages import AGENT_ID_PATTERN

#: Key name of the relay in the store (reserved; no agent may use it).
RELAY_KEY_NAME = "relay"
PUBLIC_DIR = "public_keys"
PRIVATE_DIR = "private_keys"
#: ZAP domain of the relay's server sockets.
ZAP_DOMAIN = "p2pvar"
SECRET_FILE_MODE = 0o600


@dataclass(frozen=True)
class KeyStore:
    """A key store directory; see the module docstring for its layout."""

    root: Path

    def public_path(self, name: str) -> Path:
        """File of the public key of ``name``."""
        return self.root / PUBLIC_DIR / f"{name}.key"

    def secret_path(self, name: str) -> Path:
        """File of the key pair of ``name``."""
        return self.root / PRIVATE_DIR / f"{name}.key_secret"

    def public_key(self, name: str) -> bytes:
        """The z85 public key of ``name``."""
        public, _ = self._load(self.public_path(name), name)
        return public

    def key_pair(self, name: str) -> tuple[bytes, bytes]:
        """The z85 ``(public, secret)`` key pair of ``name``."""
        public, secret = self._load(self.secret_path(name), name)
        if secret is None:
            raise SecurityError(f"key {name!r}: {self.secret_path(name)} holds no secret key")
        return public, secret

    def agent_ids(self) -> tuple[str, ...]:
        """Ids with a public key in the store, the relay excluded, sorted."""
        folder = self.root / PUBLIC_DIR
        if not folder.is_dir():
            raise SecurityError(f"keys: {folder} is not a directory (run `p2pvar keys init`)")
        names = (p.stem for p in folder.glob("*.key"))
        return tuple(sorted(n for n in names if n != RELAY_KEY_NAME))

    def raw_public_key(self, name: str) -> bytes:
        """The public key of ``name`` as raw 32 bytes (as ZAP passes it)."""
        return z85.decode(self.public_key(name))

    def user_ids(self) -> dict[bytes, str]:
        """Every agent public key of the store (raw 32 bytes) -> agent id."""
        return {self.raw_public_key(a): a for a in self.agent_ids()}

    @staticmethod
    def _load(path: Path, name: str) -> tuple[bytes, bytes | None]:
        if not path.is_file():
            raise SecurityError(f"key {name!r}: {path} does not exist")
        try:
            return zmq.auth.load_certificate(path)
        except (OSError, ValueError) as exc:
            raise SecurityError(f"key {name!r}: cannot read {path} ({exc})") from None


def init_keystore(root: Path, agent_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """Create key pairs for the relay and ``agent_ids`` under ``root``; keep existing ones.

    Returns ``(created, kept)`` names. Secret files are made readable by the owner only.
    """
    names = [RELAY_KEY_NAME]
    for agent in agent_ids:
        if not AGENT_ID_PATTERN.fullmatch(agent):
            raise SecurityError(f"agent id {agent!r}: not a valid agent id")
        if agent == RELAY_KEY_NAME:
            raise SecurityError(f"agent id {agent!r}: reserved for the relay")
        if agent not in names:
            names.append(agent)
    store = KeyStore(Path(root))
    public_dir, private_dir = store.root / PUBLIC_DIR, store.root / PRIVATE_DIR
    try:
        public_dir.mkdir(parents=True, exist_ok=True)
        private_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(private_dir, 0o700)
    except OSError as exc:
        raise SecurityError(
            f"keys {store.root}: cannot make a key store there ({exc.strerror})"
        ) from None
    created, kept = [], []
    for name in names:
        if store.secret_path(name).is_file() and store.public_path(name).is_file():
            kept.append(name)
            continue
        public_file, secret_file = zmq.auth.create_certificates(private_dir, name)
        os.chmod(secret_file, SECRET_FILE_MODE)
        Path(public_file).replace(store.public_path(name))
        created.append(name)
    return created, kept


def make_server(socket: zmq.Socket, store: KeyStore) -> None:
    """Make ``socket`` (before bind) a CURVE server with the relay's key pair."""
    public, secret = store.key_pair(RELAY_KEY_NAME)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    socket.zap_domain = ZAP_DOMAIN.encode()


def make_client(socket: zmq.Socket, store: KeyStore, agent_id: str) -> None:
    """Make ``socket`` (before connect) a CURVE client with ``agent_id``'s key pair."""
    public, secret = store.key_pair(agent_id)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = store.public_key(RELAY_KEY_NAME)
