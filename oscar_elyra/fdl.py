"""Service definitions: FDL YAML files <-> OSCAR Service JSON, and their validation.

An FDL file (as used by oscar-cli) looks like::

    functions:
      oscar:
      - my-cluster:
          name: grayify
          image: ghcr.io/example/image
          script: script.sh          # path relative to the FDL file
          input: [{storage_provider: minio.default, path: grayify/in}]
    storage_providers: {...}          # optional, merged into every service

:func:`load_fdl` turns it into OSCAR Service JSON dicts (script inlined).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from oscar_elyra._paths import MAX_DEPTH, bucket_problem, env_problem, nesting_depth
from oscar_elyra.config import load_yaml
from oscar_elyra.errors import ValidationError

__all__ = ["NAME_MAX", "by_cluster", "load_fdl", "normalize_storage_path", "validate_service"]

NAME_MAX = 39
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IO_FIELDS = ("input", "output")


def normalize_storage_path(path: str, service_name: str) -> str:
    """Normalize a storage path to ``"bucket/dir"``.

    Leading/trailing slashes are dropped; a path with no ``/`` gets the service name as
    bucket (``"in"`` -> ``"<service>/in"``). Raises :class:`ValidationError` on an empty
    path, ``..`` segments, NUL characters or a bucket name S3 refuses
    (:func:`~oscar_elyra._paths.bucket_problem`).
    """
    if not isinstance(path, str) or not path.strip(" /"):
        raise ValidationError(f"storage path {path!r} is empty; use 'bucket/dir'")
    clean = path.strip(" /")
    if "/" not in clean:
        clean = f"{service_name}/{clean}"
    parts = clean.split("/")
    if any(p in ("", ".", "..") for p in parts[1:]) or "\x00" in clean:
        raise ValidationError(
            f"storage path {path!r} has an empty, '.' or '..' segment or a NUL; use 'bucket/dir'"
        )
    problem = bucket_problem(parts[0])
    if problem:
        raise ValidationError(
            f"storage path {path!r}: {parts[0]!r} is not a valid bucket name: {problem}"
        )
    return "/".join(parts)


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{where} must be a list of strings")
    return list(value)


def validate_service(svc: dict) -> dict:
    """Validate an OSCAR Service JSON dict and return a normalized deep copy.

    Checks: ``name`` (required, <= 39 chars, DNS label), ``image`` and ``script``
    (required, non-empty strings), ``input``/``output`` entries (``path`` normalized with
    :func:`normalize_storage_path`, ``storage_provider`` defaulting to ``minio.default``,
    ``prefix``/``suffix`` lists of strings), ``environment.variables`` (scalars -> strings).
    Unknown fields are kept. Raises :class:`ValidationError` naming the field.
    """
    if not isinstance(svc, dict):
        raise ValidationError(
            f"a service definition must be a JSON object, got {type(svc).__name__}"
        )
    if nesting_depth(svc) > MAX_DEPTH:
        raise ValidationError(f"a service definition may not nest more than {MAX_DEPTH} levels")
    out = copy.deepcopy(svc)
    name = out.get("name")
    if name is None or name == "":
        raise ValidationError("service field 'name' is required")
    if not isinstance(name, str):
        raise ValidationError("service field 'name' must be a string")
    if len(name) > NAME_MAX:
        raise ValidationError(
            f"service field 'name' {name!r} is {len(name)} characters long; "
            f"the maximum is {NAME_MAX}"
        )
    if not _DNS_LABEL.match(name):
        raise ValidationError(
            f"service field 'name' {name!r} is not a DNS label: use lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    for field in ("image", "script"):
        value = out.get(field)
        if value is None or value == "":
            raise ValidationError(f"service {name!r}: field {field!r} is required")
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"service {name!r}: field {field!r} must be a non-empty string")
    for field in _IO_FIELDS:
        items = out.get(field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ValidationError(f"service {name!r}: field {field!r} must be a list")
        normalized = []
        for i, item in enumerate(items):
            where = f"service {name!r}: {field}[{i}]"
            if not isinstance(item, dict):
                raise ValidationError(f"{where} must be an object with a 'path'")
            item = dict(item)
            if "path" not in item:
                raise ValidationError(f"{where}: field 'path' is required")
            try:
                item["path"] = normalize_storage_path(item["path"], name)
            except ValidationError as exc:
                raise ValidationError(f"{where}: {exc}") from None
            provider = item.get("storage_provider") or "minio.default"
            if not isinstance(provider, str):
                raise ValidationError(f"{where}: field 'storage_provider' must be a string")
            item["storage_provider"] = provider
            for key in ("prefix", "suffix"):
                if key in item:
                    item[key] = _str_list(item[key], f"{where}.{key}")
            normalized.append(item)
        out[field] = normalized
    env = out.get("environment")
    if env is not None:
        if not isinstance(env, dict):
            raise ValidationError(f"service {name!r}: field 'environment' must be an object")
        for section in ("variables", "secrets"):
            values = env.get(section)
            if values is None:
                continue
            if not isinstance(values, dict):
                raise ValidationError(
                    f"service {name!r}: field 'environment.{section}' must be an object"
                )
            fixed = {}
            for k, v in values.items():
                if isinstance(v, (dict, list)) or v is None:
                    raise ValidationError(
                        f"service {name!r}: environment.{section}.{k} must be a scalar"
                    )
                value = str(v).lower() if isinstance(v, bool) else str(v)
                problem = env_problem(str(k), value)
                if problem:
                    raise ValidationError(f"service {name!r}: environment.{section}: {problem}")
                fixed[str(k)] = value
            env[section] = fixed
    for field in ("memory", "cpu"):
        value = out.get(field)
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(
                f"service {name!r}: field {field!r} must be a string or a number "
                f"('1Gi', '0.5'), not {type(value).__name__}"
            )
        out[field] = str(value)
    _check_providers(out.get("storage_providers"), f"service {name!r}: storage_providers")
    return out


def _check_providers(providers: Any, where: str) -> None:
    """``storage_providers`` maps a kind (minio, s3, onedata...) to ids mapped to settings."""
    if providers is None:
        return
    if not isinstance(providers, dict):
        raise ValidationError(
            f"{where} must be a mapping: {{minio|s3|onedata|webdav: {{<id>: {{settings}}}}}}"
        )
    for kind, entries in providers.items():
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise ValidationError(f"{where}.{kind} must map provider ids to their settings")


def _merge_providers(base: dict | None, extra: dict | None) -> dict | None:
    if not base and not extra:
        return base if base is not None else extra
    merged = copy.deepcopy(base or {})
    for kind, entries in (extra or {}).items():
        if isinstance(entries, dict):
            merged.setdefault(kind, {}).update(copy.deepcopy(entries))
        else:
            merged[kind] = copy.deepcopy(entries)
    return merged


def load_fdl(path: str | Path) -> list[dict]:
    """Read an FDL file and return every service of every cluster entry as Service JSON.

    Each service's ``script`` (a path relative to the FDL file) is read and inlined;
    top-level ``storage_providers`` are merged into each service; each dict carries
    ``"_cluster_id"`` naming its FDL cluster entry. Services are validated with
    :func:`validate_service`. Raises :class:`ValidationError` with a one-line message.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"FDL file not found: {path}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read FDL file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"FDL file {path} is not UTF-8 text") from None
    doc = load_yaml(text, f"FDL file {path}")
    if not isinstance(doc, dict) or not isinstance(doc.get("functions"), dict):
        raise ValidationError(
            f"FDL file {path} has no 'functions:' mapping; expected "
            "'functions: {oscar: [{<cluster-id>: {name, image, script, ...}}]}'"
        )
    entries = doc["functions"].get("oscar")
    if not isinstance(entries, list) or not entries:
        raise ValidationError(
            f"FDL file {path}: 'functions.oscar' must be a non-empty list of "
            "'{<cluster-id>: {service}}' entries"
        )
    top_providers = doc.get("storage_providers")
    _check_providers(top_providers, f"FDL file {path}: storage_providers")
    services: list[dict] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry:
            raise ValidationError(
                f"FDL file {path}: functions.oscar[{i}] must map a cluster id to a service"
            )
        for cluster_id, svc in entry.items():
            where = f"FDL file {path}: functions.oscar[{i}].{cluster_id}"
            if not isinstance(svc, dict):
                raise ValidationError(f"{where} must be a service mapping")
            svc = copy.deepcopy(svc)
            script = svc.get("script")
            if not isinstance(script, str) or not script:
                raise ValidationError(f"{where}: field 'script' (a file path) is required")
            script_path = (path.parent / script).resolve()
            try:
                svc["script"] = script_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ValidationError(
                    f"{where}: script file not found: {script_path} "
                    "(paths are relative to the FDL file)"
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ValidationError(f"{where}: cannot read script {script_path}: {exc}") from None
            _check_providers(svc.get("storage_providers"), f"{where}.storage_providers")
            providers = _merge_providers(top_providers, svc.get("storage_providers"))
            if providers:
                svc["storage_providers"] = providers
            try:
                svc = validate_service(svc)
            except ValidationError as exc:
                raise ValidationError(f"FDL file {path}: {exc}") from None
            svc["_cluster_id"] = str(cluster_id)
            services.append(svc)
    return services


def by_cluster(services: list[dict]) -> dict[str, list[dict]]:
    """Services of :func:`load_fdl` grouped by their FDL cluster id, in file order.

    As ``oscar-cli apply``: each ``functions.oscar[].<cluster-id>`` entry belongs to that
    cluster; the ``_cluster_id`` key is dropped from the returned definitions.
    """
    groups: dict[str, list[dict]] = {}
    for svc in services:
        svc = dict(svc)
        cid = str(svc.pop("_cluster_id", "") or "")
        groups.setdefault(cid, []).append(svc)
    return groups
