"""Membership: pure (sans-I/O) cluster-packet handling.

``wire`` is Heartbeat 3.0.6's packet format, ``auth`` its signing methods and ``envelope``
what the daemon calls: ``seal`` a message for sending, ``open_envelope`` a received datagram.
Nothing here touches a socket or the clock.
"""

from __future__ import annotations

__all__: list[str] = []
