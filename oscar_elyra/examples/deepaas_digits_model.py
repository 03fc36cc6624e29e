"""The digits classifier as a DEEPaaS v2 model (entry point ``deepaas-digits``).

DEEPaaS (``deepaas-run`` for its REST API, ``deepaas-cli`` for one call, as AI4EOSC's OSCAR
services do) loads a model as a module exposing ``get_metadata``, ``get_predict_args``,
``get_train_args``, ``predict`` and ``train``. Arguments are webargs/marshmallow fields: a
``fields.Field`` whose metadata says ``type: file`` is a file argument (``deepaas-cli`` hands
the model an ``UploadedFile`` whose ``filename`` is a temporary copy); ``metadata["enum"]``
lists the choices.

The model is the one of the ``digits`` example service: a scikit-learn logistic regression
trained on ``sklearn.datasets.load_digits`` at first use, its coefficients cached as
``digits-logreg-v1.npz`` in ``$OSCAR_ELYRA_CACHE_DIR`` (else the temp dir).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from webargs import fields, validate

__all__ = ["get_metadata", "get_predict_args", "get_train_args", "predict", "train"]

MODEL_FILE = "digits-logreg-v1.npz"
INK_CHOICES = ["auto", "dark", "light"]


def get_metadata() -> dict[str, Any]:
    """What DEEPaaS shows for ``get_metadata`` (and ``deepaas-cli`` with no method)."""
    return {
        "name": "deepaas-digits",
        "version": "1.0.0",
        "summary": "Handwritten digit classifier (scikit-learn digits, logistic regression)",
        "description": (
            "Predicts the digit (0-9) shown in an image; the image is converted to "
            "grayscale and reduced to the 8x8 pixels of sklearn's digits data set."
        ),
        "license": "Apache-2.0",
        "author": "oscar-elyra",
    }


def get_predict_args() -> dict[str, fields.Field]:
    """The arguments of ``predict``: an image file, how many classes to return, the ink."""
    return {
        # DEEPaaS recognises a file argument as a bare Field with metadata type "file"
        "image": fields.Field(
            required=True,
            metadata={"type": "file", "location": "form", "description": "Image of one digit"},
        ),
        "top_k": fields.Int(
            required=False,
            load_default=3,
            validate=validate.Range(min=1, max=10),
            metadata={"description": "How many of the most probable digits to return (1-10)"},
        ),
        "ink": fields.Str(
            required=False,
            load_default="auto",
            validate=validate.OneOf(INK_CHOICES),
            metadata={
                "description": "Ink colour: dark on light paper, light on dark, or auto",
                "enum": INK_CHOICES,
            },
        ),
    }


def get_train_args() -> dict[str, fields.Field]:
    """The model trains itself on first use; ``train`` takes no arguments."""
    return {}


def train(**kwargs: Any) -> dict[str, Any]:
    """(Re)train the classifier and cache its coefficients."""
    _train(_model_path())
    return {"status": "trained", "model": MODEL_FILE}


def _model_path() -> str:
    cache = os.environ.get("OSCAR_ELYRA_CACHE_DIR") or tempfile.gettempdir()
    return os.path.join(cache, MODEL_FILE)


def _train(path: str) -> None:
    # heavy optional dependencies (the `local` extra): imported on use
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    clf = LogisticRegression(max_iter=3000).fit(data.data / 16.0, data.target)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".digits-", suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, coef=clf.coef_, intercept=clf.intercept_, classes=clf.classes_)
    os.replace(tmp, path)


def _load() -> Any:
    import numpy as np  # heavy optional dependency (the `local` extra)

    path = _model_path()
    try:
        return np.load(path)
    except (OSError, ValueError):
        _train(path)
        return np.load(path)


def predict(**kwargs: Any) -> dict[str, Any]:
    """Classify ``image``: the best digit, the ``top_k`` likeliest ones, all 10 probabilities."""
    # heavy optional dependencies (the `local` extra): imported on use
    import numpy as np
    from PIL import Image

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # a tiny model: one BLAS thread is fastest
    upload = kwargs["image"]
    top_k = int(kwargs.get("top_k") or 3)
    ink = kwargs.get("ink") or "auto"
    if not 1 <= top_k <= 10:
        raise ValueError(f"top_k must be between 1 and 10, not {top_k}")
    if ink not in INK_CHOICES:
        raise ValueError(f"ink must be one of {INK_CHOICES}, not {ink!r}")
    path = getattr(upload, "filename", upload)
    model = _load()
    with Image.open(path) as img:
        gray = np.asarray(img.convert("L"), dtype=float)
    if ink == "dark" or (ink == "auto" and gray.mean() > 127):
        gray = 255.0 - gray  # dark ink on light paper -> light on dark, like the data set
    small = Image.fromarray(gray.astype(np.uint8)).resize((8, 8), Image.Resampling.BOX)
    x = np.asarray(small, dtype=float).ravel()
    if x.max() > 0:
        x = x / x.max()
    logits = x @ model["coef"].T + model["intercept"]
    p = np.exp(logits - logits.max())
    p = p / p.sum()
    order = np.argsort(-p)[:top_k]
    classes = model["classes"]
    return {
        "digit": int(classes[int(order[0])]),
        "top_k": [
            {"digit": int(classes[int(i)]), "probability": round(float(p[i]), 6)} for i in order
        ],
        "probabilities": [round(float(v), 6) for v in p],
        "input": os.path.basename(str(getattr(upload, "original_filename", path))),
    }
