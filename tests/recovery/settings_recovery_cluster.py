"""settings_recovery on channels-redis (``REDIS_URL``, ``CSIO_LAYER_PREFIX``): several server
processes form one Socket.IO server and share the recovery store of ``CSIO_RECOVERY_STORE``."""

from tests.cluster.settings_cluster import CHANNEL_LAYERS  # noqa: F401
from tests.recovery.settings_recovery import *  # noqa: F403

# The node view the cluster fixtures ask (GET /_cluster/node/), and the project's URLs.
ROOT_URLCONF = "tests.cluster.cluster_urls"
