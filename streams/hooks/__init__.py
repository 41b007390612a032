"""Webhook intake: what a platform posts to ``/hooks/<slug>/``, checked in the web process and queued for the worker.

``intake`` is the view (read a capped body, check the signature, parse,
queue, answer); ``signatures``, ``bodies``, ``targets`` and ``refusals`` hold
its steps; ``queue`` is the hand-off's interface, kept in Redis
(``redis_queue``) or in memory (``memory_queue``) as ``process_queue`` picks.
The worker's side, the connector that reads the queue, is
``streams.vendors.webhook``.
"""
