"""The Genesys Cloud stand-in: OAuth, REST, analytics, notification channels and sockets, fed by the model.

``api.py`` serves the HTTP side (its routes in ``oauth.py``,
``queues_and_users.py``, ``analytics.py``, ``notifications.py``);
``channels.py`` holds the channels and their subscriptions, ``sockets.py``
one open socket, ``socket_control.py`` the faults that act on sockets;
``topic_publisher.py`` turns model changes into messages built by
``payloads.py`` on the topics of ``topics.py``.
"""
