"""The relay's ZAP handler: a ``zmq.auth`` thread admitting the key store's agent keys.

Its own module, imported only by a relay with keys: ``zmq.auth.thread`` loads asyncio, which
no agent process needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from messaging.security import ZAP_DOMAIN, KeyStore


class KeyStoreAuthenticator(ThreadAuthenticator):
    """ZAP handler admitting agent keys of the store; ``User-Id`` is the key's agent id.

    With ``agents`` only those agents' keys are admitted (a run's own agents, not stale keys
    of an earlier run left in the same directory); a key the store lacks is an error.
    """

    def __init__(
        self, context: zmq.Context, store: KeyStore, agents: Iterable[str] | None = None
    ) -> None:
        super().__init__(context)
        user_ids = store.user_ids()
        if agents is not None:
            user_ids = {store.raw_public_key(a): a for a in agents}
        self._user_ids = user_ids

    def start(self) -> None:
        """Start the ZAP thread admitting only the authorised agents' public keys."""
        super().start()
        self.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self)

    def callback(self, domain: str, z85_key: bytes) -> bool:
        """Whether the client key (z85) belongs to an authorised agent (ZAP credentials)."""
        return z85.decode(z85_key) in self._user_ids

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The agent id of an admitted key ("" for the relay's own key)."""
        return self._user_ids.get(client_public_key, "")
