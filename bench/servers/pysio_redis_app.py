"""python-socketio's benchmark app (pysio_app) with ``socketio.AsyncRedisManager`` at
``REDIS_URL``: every process running it forms one server, as channels_sio's processes do on
channels-redis (``example_project.settings_bench_redis``). The cluster scenario of bench/run.py.

Run: ``REDIS_URL=redis://127.0.0.1:6379/5 uvicorn bench.servers.pysio_redis_app:app``.
"""

import os

import socketio

from bench.servers.pysio_app import create_app

app = create_app(socketio.AsyncRedisManager(os.environ["REDIS_URL"]))
