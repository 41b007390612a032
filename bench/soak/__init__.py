"""The CXone soak's parts (``bench/cxone_outage.py`` runs it): the demo and this process's HTTP side
(``demo``), the link's saved health (``health``), the board's samples and what they add up to (``samples``),
and the figures with the verdict line (``report``).
"""
