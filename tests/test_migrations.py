"""The migrations of channels_sio match its models."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_migration_is_missing() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "channels_sio", "--check", "--dry-run", stdout=out)
    except SystemExit:  # what --check does when a migration would be written
        pytest.fail(
            f"channels_sio needs a migration (makemigrations channels_sio):\n{out.getvalue()}"
        )
    assert "No changes detected" in out.getvalue()
