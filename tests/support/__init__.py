"""The test bed: real NATS and NATS Streaming servers, a TCP relay, Go peers.

Tests never mock NATS. Everything here starts real processes or real sockets
and cleans them up, so a test failure always means something real went wrong.
"""
