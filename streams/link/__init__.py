"""The link supervisor: keep one vendor connection streaming, in small parts.

``connector`` (the class vendors subclass, and its hooks), ``supervisor``
(what is done with each link), ``reconnect`` (the reconnect loop and its
backoff), ``failures`` (one ``classify`` for every client), ``liveness``
(strategies as objects), ``resync`` (snapshots and the events held back
meanwhile), ``rollover`` (make-before-break), ``links``/``reader``/``sockets``
(opening, reading and closing links), ``polling`` (a poll schedule as a
wire) and ``timing`` (every period and limit). This module imports nothing,
so that ``streams.oauth`` can use ``failures`` without a cycle.
"""
