#!/bin/bash
# grayify: an image in -> "$TMP_OUTPUT_DIR/<input stem>.png", grayscale (Pillow).
set -euo pipefail
python3 - "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR" <<'PY'
import os
import sys

from PIL import Image

src, out_dir = sys.argv[1], sys.argv[2]
stem = os.path.splitext(os.path.basename(src))[0]
dest = os.path.join(out_dir, stem + ".png")
with Image.open(src) as img:
    gray = img.convert("L")
    gray.save(dest, format="PNG")
print(f"grayify: {os.path.basename(src)} {img.size[0]}x{img.size[1]} -> {os.path.basename(dest)}")
PY
