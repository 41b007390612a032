"""Generic WebSocket feeds: JSON or MessagePack records folded through a field mapping."""
