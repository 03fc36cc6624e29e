#!/bin/bash
# digits: an image of a handwritten digit in -> "$TMP_OUTPUT_DIR/<input stem>.json" with
# {"digit": int, "probabilities": [10 floats], "input": name}.
# Model: scikit-learn logistic regression trained on sklearn.datasets.load_digits at first
# use; its coefficients are cached (npz) in $OSCAR_ELYRA_CACHE_DIR (else the temp dir).
set -euo pipefail
python3 - "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR" <<'PY'
import json
import os
import sys
import tempfile

# a tiny model: one BLAS thread is ~50x faster than oversubscribed threads on a busy host
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

src, out_dir = sys.argv[1], sys.argv[2]
cache = os.environ.get("OSCAR_ELYRA_CACHE_DIR") or tempfile.gettempdir()
model_path = os.path.join(cache, "digits-logreg-v1.npz")


def train() -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    clf = LogisticRegression(max_iter=3000).fit(data.data / 16.0, data.target)
    os.makedirs(cache, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".digits-", suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, coef=clf.coef_, intercept=clf.intercept_, classes=clf.classes_)
    os.replace(tmp, model_path)
    print("digits: trained the model on sklearn's digits data set", file=sys.stderr)


try:
    model = np.load(model_path)
except (OSError, ValueError):
    train()
    model = np.load(model_path)

with Image.open(src) as img:
    gray = np.asarray(img.convert("L"), dtype=float)
if gray.mean() > 127:  # dark ink on light paper -> light ink on dark, like the data set
    gray = 255.0 - gray
small = Image.fromarray(gray.astype(np.uint8)).resize((8, 8), Image.Resampling.BOX)
x = np.asarray(small, dtype=float).ravel()
if x.max() > 0:
    x = x / x.max()
logits = x @ model["coef"].T + model["intercept"]
p = np.exp(logits - logits.max())
p = p / p.sum()
name = os.path.basename(src)
result = {
    "digit": int(model["classes"][int(np.argmax(p))]),
    "probabilities": [round(float(v), 6) for v in p],
    "input": name,
}
dest = os.path.join(out_dir, os.path.splitext(name)[0] + ".json")
with open(dest, "w", encoding="utf-8") as fh:
    json.dump(result, fh)
print(f"digits: {name} -> {result['digit']}")
PY
