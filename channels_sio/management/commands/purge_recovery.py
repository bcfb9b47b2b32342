"""``manage.py purge_recovery``: purge the connection state recovery store now, e.g. from cron
when no server runs to purge it in the background."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError

from channels_sio import conf
from channels_sio.recovery import RecoveryStore


async def _purge(store: RecoveryStore) -> int:
    try:
        return await store.purge()
    finally:
        await store.close()  # the command's process ends: release the store's connections


class Command(BaseCommand):
    help = (
        "Remove the expired sessions, and the packets older than max_disconnection_duration, "
        "from the configured connection state recovery store."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        recovery = conf.recovery()
        if recovery is None:
            raise CommandError(
                "Connection state recovery is off (CHANNELS_SIO['connection_state_recovery'] "
                "is not set): there is no store to purge."
            )
        store = recovery.store
        name = type(store).__name__
        if not store.shared:
            self.stderr.write(
                self.style.WARNING(
                    f"{name} lives in each server process's memory, and purges itself there: "
                    "this command's process has a store of its own, with nothing in it."
                )
            )
        removed = async_to_sync(_purge)(store)
        self.stdout.write(
            self.style.SUCCESS(f"Purged {removed} expired sessions and old packets ({name}).")
        )
