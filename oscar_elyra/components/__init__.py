"""Entry points of the OSCAR palette components: ``python -m oscar_elyra.components.<name>``.

Each module takes exactly the arguments its YAML (``components/oscar_<name>.yaml``) passes and
calls the same :mod:`oscar_elyra.ops` function the notebooks use. Connection settings and
secrets come only from environment variables (OSCAR_ENDPOINT, OSCAR_USER, OSCAR_PASSWORD or
OSCAR_TOKEN, OSCAR_SSL_VERIFY), which Elyra fills from Kubernetes secrets.
"""

from __future__ import annotations

#: module name -> component YAML file
COMPONENTS = {
    "upload": "oscar_upload.yaml",
    "invoke_sync": "oscar_invoke_sync.yaml",
    "invoke_async": "oscar_invoke_async.yaml",
    "download": "oscar_download.yaml",
    "deploy_service": "oscar_deploy_service.yaml",
}
