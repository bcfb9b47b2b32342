"""Benchmarks: channels_sio against python-socketio and a raw ASGI floor (docs/benchmarks.md)."""
