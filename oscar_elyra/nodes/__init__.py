"""What the pipeline nodes call: notebooks in ``notebooks/`` and the palette entry points.

- :mod:`~oscar_elyra.nodes.params`: node parameters (environment variables) checked, with
  :class:`~oscar_elyra.errors.ParameterError` naming the variable;
- :mod:`~oscar_elyra.nodes.ops`: the node operations (upload, invoke, download, deploy), on
  :class:`~oscar_elyra.artifacts.Artifact` lists;
- :mod:`~oscar_elyra.nodes.display`: tables, inline images and one-line errors in a notebook.

``from oscar_elyra import nodes`` then ``nodes.upload(...)``, ``nodes.require(...)``.
"""

from __future__ import annotations

from oscar_elyra.errors import ParameterError
from oscar_elyra.nodes.display import short_errors, show, summary
from oscar_elyra.nodes.ops import (
    DEFAULT_ARTIFACTS_URI,
    artifacts_prefix,
    deploy,
    download,
    invoke_async,
    invoke_sync,
    load_manifest_artifacts,
    output_prefix,
    require_service,
    store_file,
    upload,
)
from oscar_elyra.nodes.params import (
    as_int,
    as_node,
    check_source,
    local_files,
    require,
    split_list,
)

__all__ = [
    "DEFAULT_ARTIFACTS_URI",
    "ParameterError",
    "artifacts_prefix",
    "as_int",
    "as_node",
    "check_source",
    "deploy",
    "download",
    "invoke_async",
    "invoke_sync",
    "load_manifest_artifacts",
    "local_files",
    "output_prefix",
    "require",
    "require_service",
    "short_errors",
    "show",
    "split_list",
    "store_file",
    "summary",
    "upload",
]
