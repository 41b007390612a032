"""The sources Floorview speaks, one package per kind (connector, parsers, REST client), and their registry."""
