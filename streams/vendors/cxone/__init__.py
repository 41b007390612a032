"""NICE CXone: the real-time REST API, polled, with its sign-in and parsers."""
