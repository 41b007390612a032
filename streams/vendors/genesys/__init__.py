"""Genesys Cloud: the notifications WebSocket, its REST snapshot and the parsers for both."""
