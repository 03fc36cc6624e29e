"""Embedded OSCAR-compatible cluster for offline development, demos and tests.

A real S3 server (SeaweedFS ``weed mini``) plus the OSCAR REST API served on loopback by
tornado. Service scripts run on the host (the ``image`` is recorded, never pulled).
Nothing else in the project depends on the cluster being this one.
"""

from oscar_elyra.local.cluster import LocalCluster, stop_running
from oscar_elyra.discovery import default_data_dir, read_running

__all__ = ["LocalCluster", "stop_running", "default_data_dir", "read_running"]
