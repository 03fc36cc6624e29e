"""Embedded OSCAR-compatible cluster for offline development, demos and tests.

A real S3 server (SeaweedFS ``weed mini``) plus the OSCAR REST API served on loopback by
tornado. Service scripts run on the host (the ``image`` is recorded, never pulled).
Nothing else in the project depends on the cluster being this one; finding a running
cluster needs only :mod:`oscar_elyra.discovery`.

Modules: ``cluster`` (:class:`LocalCluster`: start/stop the server process), ``server``
(that process), ``api`` (the REST handlers), ``services`` (service registry),
``records`` (job records on disk), ``jobs`` (bucket watching, queue, workers),
``runner`` (the one job runner of sync and async jobs), ``weed`` (SeaweedFS),
``procs`` (stopping processes), ``state`` (credentials), ``examples``.
"""

from oscar_elyra.local.cluster import LocalCluster, stop_running

__all__ = ["LocalCluster", "stop_running"]
