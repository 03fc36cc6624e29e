"""Bundled example services (FDL + script), deployable unchanged to a real OSCAR cluster.

- ``cowsay`` (sync): ``{"message": ...}`` (or plain text) in, a talking cow out.
  Image ``ghcr.io/grycap/cowsay`` (OSCAR's own cowsay example image: cowsay + jq);
  on a host without ``cowsay``/``jq`` the script falls back to python3/awk.
- ``grayify``: an image in, ``<stem>.png`` (grayscale, Pillow) out.
- ``digits``: an image of a handwritten digit in, ``<stem>.json`` with the predicted
  digit and the 10 class probabilities out (scikit-learn logistic regression trained on
  ``sklearn.datasets.load_digits`` at first use, cached as coefficients in
  ``$OSCAR_ELYRA_CACHE_DIR`` — the embedded cluster's data dir — else the temp dir).
- ``deepaas-digits``: the same classifier as a DEEPaaS v2 model
  (:mod:`oscar_elyra.examples.deepaas_digits_model`) behind ``deepaas-cli``, with the
  request and answer shapes of the AI4EOSC marketplace services (JSON arguments,
  ``oscar-files``; sync answers the DEEPaaS log, async writes ``<stem>.json`` and
  ``<stem>.log``). Its image is built from the ``Dockerfile`` beside its FDL.

The Python services name the image ``quay.io/jupyter/scipy-notebook:python-3.11``
(python3 with Pillow, NumPy and scikit-learn). The embedded cluster records images but
runs scripts on the host.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "examples_dir", "fdl_paths"]

EXAMPLES = ("cowsay", "grayify", "digits", "deepaas-digits")


def examples_dir() -> Path:
    """Directory holding ``<name>/<name>.yaml`` and ``<name>/script.sh``."""
    return Path(__file__).resolve().parent


def fdl_paths() -> list[Path]:
    """FDL files of the bundled examples, in a fixed order."""
    return [examples_dir() / name / f"{name}.yaml" for name in EXAMPLES]
