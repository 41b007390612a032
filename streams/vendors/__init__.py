"""The sources Floorview speaks, one package per kind (connector, parsers, REST, settings, queues), and a registry."""
