"""Messages, codec, transports and overhead counters of the p2pvar agents.

The protocol lives in :mod:`messaging.messages` (one frozen dataclass per kind, ``KINDS``),
the wire format in :mod:`messaging.codec` (``encode``/``decode``/``validate``).
"""
