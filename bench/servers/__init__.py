"""The ASGI applications the benchmark compares channels_sio with."""
