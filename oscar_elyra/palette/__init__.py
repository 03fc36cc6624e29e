"""Entry points of the OSCAR palette components: ``python -m oscar_elyra.palette.<name>``.

Each module takes exactly the arguments its component YAML (``oscar_<name>.yaml`` in
``oscar_elyra/elyra/components/``) passes and calls the same :mod:`oscar_elyra.nodes`
operation the notebooks use. Connection settings and secrets come only from environment
variables (OSCAR_ENDPOINT, OSCAR_USER, OSCAR_PASSWORD or OSCAR_TOKEN, OSCAR_SSL_VERIFY): on
Kubeflow a PodDefault injects them (:mod:`oscar_elyra.elyra.kfp`), with ``oscar-elyra run`` the
runner sets them. ``--run-id`` names the run's object storage folder (Kubeflow passes the run's
id, see ``_common.add_run_id``). ``oscar_elyra.components.<name>`` is an alias
kept for older component YAML and exported KFP pipelines.
"""

from __future__ import annotations

__all__ = ["COMPONENTS"]

#: module name -> component YAML file
COMPONENTS = {
    "upload": "oscar_upload.yaml",
    "invoke_sync": "oscar_invoke_sync.yaml",
    "invoke_async": "oscar_invoke_async.yaml",
    "download": "oscar_download.yaml",
    "deploy_service": "oscar_deploy_service.yaml",
    "deepaas_predict": "oscar_deepaas_predict.yaml",
}
