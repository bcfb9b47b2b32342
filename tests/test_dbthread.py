"""DatabaseThread: the thread of the database recovery store and the monitoring registry."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections

from channels_sio.dbthread import DatabaseThread
from channels_sio.models import Node

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_thread_keeps_no_statement_log_under_debug(
    settings: Any,
) -> None:
    """Django logs every statement while DEBUG is on and clears the log when a request starts,
    which never happens in this thread: the 10-minute churn soak grew by the log's size."""
    settings.DEBUG = True
    thread = DatabaseThread("default", "test-dbthread")
    try:
        for _ in range(3):
            await thread.run(lambda: list(Node.objects.all()))
        logged = await thread.run(lambda: len(connections["default"].queries_log))
    finally:
        await thread.close()
    assert logged == 0
