"""Generic Server-Sent Events feeds: records folded through a field mapping, resumed by Last-Event-ID."""
