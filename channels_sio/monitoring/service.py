"""This process's monitoring: the registry writer and the leak rules, owned by its node.

One task on the event loop keeps time: every ``flush_interval`` it takes the tracker's
snapshot (on the loop, where the sessions live) and has the registry write it; every
``rules_interval`` it tries to take or renew the rules lease, and while this node holds it,
evaluates the leak rules. Every ORM call runs in one thread of the monitor's own, which keeps
its database connection from one call to the next (closed after an error, and on stop), so
the loop never waits for the database and a flush costs a handful of statements.

The rules lease lasts three ``rules_interval``: when its holder dies, another node takes over
within that time; a clean stop gives it up at once. Alarms are logged, and their signals sent,
from the monitor's thread once the evaluation committed (see :mod:`channels_sio.signals`).
A database that fails is retried at every step, with one warning per failure streak; missing
tables (not migrated) stop monitoring in this process with one warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router, transaction
from django.utils import timezone

from .. import conf
from ..dbthread import DatabaseThread
from ..models import Node as NodeRow
from . import alarms, lease, registry, rules
from .registry import FlushBuilder, NodeNotCurrent
from .tracker import Tracker

if TYPE_CHECKING:
    from ..cluster.node import Node

__all__ = ["Monitor"]

logger = logging.getLogger("channels_sio.monitoring")

T = TypeVar("T")

#: How long stopping waits for the last write (seconds): a stop is not held by a dead database.
STOP_TIMEOUT = 5.0


class Monitor:
    """Keeps this node's rows in the registry and, while it holds the lease, evaluates the
    leak rules. ``start`` from the running loop; ``stop`` writes the goodbye."""

    def __init__(self, node: Node, *, using: str | None = None) -> None:
        self.node = node
        values = {**conf.MONITORING_DEFAULTS, **(conf.monitoring_settings() or {})}
        self.flush_interval = values["flush_interval"] / 1000
        self.rules_interval = values["rules_interval"] / 1000
        self.thresholds = rules.Thresholds.from_settings()
        #: The database of the registry: the router's choice for its models by default.
        self.using = using or router.db_for_write(NodeRow)
        self._tracker_options: dict[str, Any] = {
            "trusted_proxy_header": values["trusted_proxy_header"],
            "fingerprint": tuple(values["fingerprint"]),
            "window": max(values["storm_window"], values["slow_consumer_window"]) / 1000,
        }
        self.tracker: Tracker | None = None
        self._builder: FlushBuilder | None = None
        self._thread = DatabaseThread(self.using, "channels-sio-monitoring")
        self._task: asyncio.Task[None] | None = None
        self._watch = rules.SessionWatch()
        #: The next flush writes every live session (the first, and any after a failure).
        self._full = True
        self._fresh_tracker = True
        #: This node's row was written: stopping has a goodbye to write.
        self._registered = False
        #: Whether this node held the rules lease at its last try.
        self.holder = False
        self._failing: set[str] = set()

    def __repr__(self) -> str:
        return f"<Monitor of node {self.node.id}>"

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Attach the tracker and start the task (once)."""
        if self._task is not None:
            return
        self.tracker = Tracker(self.node.server, **self._tracker_options)
        self.tracker.attach()
        self._fresh_tracker = True
        self._builder = FlushBuilder(
            node_id=self.node.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            channel=self.node.channel or "",
            started_at=time.time(),
            storm_window=self.thresholds.storm_window.total_seconds(),
            slow_window=self.thresholds.slow_consumer_window.total_seconds(),
            orphan_grace=self.thresholds.stuck_grace.total_seconds(),
        )
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"channels_sio monitor {self.node.id}")
        self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Not the database (that is retried): a bug. Logged, and the tracker let go.
            logger.error("node %s: monitoring stopped", self.node.id, exc_info=task.exception())
            self._detach()

    async def stop(self) -> None:
        """Stop the task, write the goodbye (this node's sessions deleted, its row marked
        gone, the lease given up), detach the tracker, end the thread. Safe to call twice."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # wait() does not raise the task's CancelledError; a cancellation of stop() does.
        await asyncio.wait([task])
        self._detach()
        if self._registered:
            self._registered = False
            try:
                await asyncio.wait_for(self._thread.run(self._goodbye), STOP_TIMEOUT)
            except (DatabaseError, TimeoutError) as exc:
                logger.warning("node %s: the registry goodbye failed: %s", self.node.id, exc)
        await self._thread.close(STOP_TIMEOUT)

    def _detach(self) -> None:
        if self.tracker is not None:
            self.tracker.detach()

    def _goodbye(self) -> None:
        now = timezone.now()
        registry.write_goodbye(self.using, self.node.id, now)
        lease.release(self.using, lease.RULES_LEASE, self.node.id)

    async def _run(self) -> None:
        if not await self._ready():
            self._detach()
            return
        loop = asyncio.get_running_loop()
        next_flush = next_rules = loop.time()
        while True:
            if loop.time() >= next_flush:
                await self._step("flush", self.flush)
                next_flush = _next(next_flush, self.flush_interval, loop.time())
            if loop.time() >= next_rules:
                await self._step("rules", self.evaluate)
                next_rules = _next(next_rules, self.rules_interval, loop.time())
            await asyncio.sleep(max(0.0, min(next_flush, next_rules) - loop.time()))

    async def _ready(self) -> bool:
        """Whether the registry's tables exist (retried while the database fails); a
        warning, once, when they do not."""
        while True:
            try:
                missing = await self._thread.run(registry.missing_tables, self.using)
            except ImproperlyConfigured as exc:
                logger.warning("monitoring is off in this process: %s", exc)
                return False
            except DatabaseError as exc:
                self._failed("flush", exc)
                await asyncio.sleep(self.flush_interval)
                continue
            if missing:
                logger.warning(
                    "The live-session registry's tables (%s) are not in database %r: run "
                    "`manage.py migrate channels_sio`. Monitoring is off in this process "
                    "until it restarts.",
                    ", ".join(missing),
                    self.using,
                )
                return False
            self._succeeded("flush")
            return True

    async def _step(self, what: str, step: Callable[[], Any]) -> None:
        try:
            await step()
        except DatabaseError as exc:
            self._failed(what, exc)
        except Exception:
            # A bug, not the database: logged with its traceback; the next step tries again.
            logger.exception("node %s: monitoring %s failed", self.node.id, what)
        else:
            self._succeeded(what)

    def _failed(self, what: str, exc: BaseException) -> None:
        if what in self._failing:
            logger.debug("node %s: registry %s failed again: %s", self.node.id, what, exc)
            return
        self._failing.add(what)
        logger.warning(
            "node %s: registry %s failed (%s); trying again every %.1fs",
            self.node.id,
            what,
            exc,
            self.flush_interval if what == "flush" else self.rules_interval,
        )

    def _succeeded(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            logger.info("node %s: registry %s works again", self.node.id, what)

    # -- the registry ---------------------------------------------------------------------

    async def flush(self) -> None:
        """Write one snapshot of this node to the registry."""
        assert self._builder is not None
        full = self._full
        if full and not self._fresh_tracker:
            self._replace_tracker()
        tracker = self.tracker
        assert tracker is not None
        self._fresh_tracker = False
        snapshot = tracker.snapshot()
        live = frozenset(tracker.sessions) if full else None
        flush = self._builder.build(snapshot, time.time(), live=live)
        try:
            await self._thread.run(registry.write_flush, self.using, flush)
        except NodeNotCurrent:
            # Marked gone while its flushes failed or stalled (or purged): all again, now.
            logger.info("node %s: its registry rows were marked gone; rewriting", self.node.id)
            self._full = True
            await self.flush()
            return
        except BaseException:
            self._full = True
            raise
        self._full = False
        self._registered = True

    def _replace_tracker(self) -> None:
        """A new tracker, whose first snapshot lists every session (a full flush); the
        counts of closes and the recent events carry over."""
        old = self.tracker
        new = Tracker(self.node.server, **self._tracker_options)
        if old is not None:
            new.closes = old.closes
            new.events = old.events
            old.detach()
        new.attach()
        self.tracker = new

    # -- the rules ------------------------------------------------------------------------

    async def evaluate(self) -> None:
        """Take or renew the rules lease; while this node holds it, evaluate the rules."""
        self.holder = await self._thread.run(self._evaluate)

    def _evaluate(self) -> bool:
        now = timezone.now()
        expires = now + timedelta(seconds=3 * self.rules_interval)
        if not lease.take(self.using, lease.RULES_LEASE, self.node.id, now, expires):
            self._watch.clear()
            return False
        thresholds = self.thresholds
        with transaction.atomic(using=self.using):
            rules.mark_gone(self.using, thresholds, now)
            evaluation = rules.evaluate(self.using, thresholds, now, self._watch)
            outcome = alarms.reconcile(self.using, evaluation, now)
        alarms.announce(outcome)
        rules.purge(self.using, thresholds, now)
        return True


def _next(due: float, interval: float, now: float) -> float:
    """The next time a step due at ``due`` runs: an interval later, or an interval from now
    when the loop fell behind (missed steps are not run twice)."""
    following = due + interval
    return following if following > now else now + interval
