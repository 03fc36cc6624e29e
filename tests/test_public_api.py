"""The public surface: what ``import oscar_elyra as oe`` promises exists and is complete."""

from __future__ import annotations

import builtins
import inspect
import subprocess
import sys

import oscar_elyra as oe
from oscar_elyra import errors, invoke
from oscar_elyra.artifacts import Artifact, Manifest
from oscar_elyra.session import Session


def test_every_name_in_all_exists():
    for name in oe.__all__:
        assert getattr(oe, name) is not None, name


def test_every_error_class_is_exported():
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.OscarError)
    }
    assert classes, "no error classes found"
    for name in classes:
        assert getattr(oe, name) is getattr(errors, name), name
    assert set(errors.__all__) >= classes


def test_returned_types_are_exported():
    assert oe.BatchResult is invoke.BatchResult
    assert oe.Result is invoke.Result and oe.Job is invoke.Job
    assert oe.Artifact is Artifact and oe.Manifest is Manifest
    assert oe.Session is Session


def test_star_import_does_not_shadow_builtins():
    assert not [name for name in oe.__all__ if hasattr(builtins, name)]
    code = (
        "from oscar_elyra import *\n"
        "import builtins\n"
        "assert map is builtins.map and TimeoutError is builtins.TimeoutError\n"
        "assert callable(run) and callable(connect) and OscarError\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_module_all_lists_exist():
    for module in ("errors", "redact", "_paths", "discovery", "session", "invoke", "deepaas"):
        mod = __import__(f"oscar_elyra.{module}", fromlist=["__all__"])
        for name in mod.__all__:
            assert hasattr(mod, name), f"oscar_elyra.{module}.{name}"


def test_unknown_attribute_is_an_attribute_error():
    try:
        oe.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("oe.no_such_name did not raise")
