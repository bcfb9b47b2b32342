"""The example project with connection state recovery on, for the admin's browser test:
``CSIO_ADMIN_STORE`` picks the store (``database`` by default, ``memory``), ``EXAMPLE_DB``
(example settings) the SQLite file."""

import os

from example_project.settings import *  # noqa: F403

CHANNELS_SIO = {
    "connection_state_recovery": {
        "store": os.environ.get("CSIO_ADMIN_STORE", "database"),
        "max_disconnection_duration": 600_000,
    },
}
