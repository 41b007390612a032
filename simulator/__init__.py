"""The built-in vendor simulator: a faithful stand-in for every source Floorview reads, as a Django app of its own.

It speaks each platform's protocol (docs/protocols/) over one small
contact-centre model, injects faults on demand and shows its ground truth,
for demos, tests, benchmarks and soak runs. ``python manage.py simulate``
runs it alone; ``python manage.py demo`` runs it beside the rest. Production
code never imports it.
"""
