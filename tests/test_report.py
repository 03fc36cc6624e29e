"""``report.html`` previews each node's outputs from local files, self-contained (no network)."""

from __future__ import annotations

import io
import json
import re
from html import unescape

from oscar_elyra.artifacts import Artifact, Manifest
from oscar_elyra.pipeline.report import render_report


def _png(shade: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), shade).save(buf, format="PNG")
    return buf.getvalue()


def test_previews_thumbnails_rows_excerpt_embedded_report(tmp_path):
    run_dir = tmp_path / "run"
    # a notebook node's manifest in <cwd>/runs/, listing uploaded local files (source)
    cwd = tmp_path / "notebooks"
    (cwd / "runs").mkdir(parents=True)
    images = tmp_path / "data"
    images.mkdir()
    for i in range(8):
        (images / f"d{i}.png").write_bytes(_png(30 * i))
    up = Manifest(
        node="upload",
        run="r1",
        artifacts=[
            Artifact(
                uri=f"s3://b/r1/upload/d{i}.png", size=70, sha256=None, source=f"../data/d{i}.png"
            )
            for i in range(8)
        ],
    )
    (cwd / "runs" / "upload.manifest.json").write_text(json.dumps(up.to_dict()))
    # objects only in object storage are listed by URI
    remote = Manifest(
        node="digits",
        run="r1",
        artifacts=[
            Artifact(uri=f"s3://b/r1/digits/d{i}.json", size=80, sha256=None) for i in range(7)
        ],
    )
    (cwd / "runs" / "digits.manifest.json").write_text(json.dumps(remote.to_dict()))
    # a palette download node: a folder output of JSON results
    files = run_dir / "nodes" / "download" / "outputs" / "files"
    files.mkdir(parents=True)
    for i in range(7):
        (files / f"d{i}.json").write_text(json.dumps({"digit": i, "probabilities": [0.1] * 10}))
    # a report node: CSV, text, and an HTML report with a relative image
    out = tmp_path / "report"
    out.mkdir()
    (out / "predictions.csv").write_text(
        "input,predicted\n" + "".join(f"d{i},{i}\n" for i in range(9))
    )
    (out / "notes.txt").write_text("x" * 5000)
    (out / "report.png").write_bytes(_png(200))
    (out / "report.html").write_text(
        "<html><body><h1>Digits report</h1><img src='report.png'>"
        '<img src="https://cdn.example.org/x.png"></body></html>'
    )
    nodes = [
        {"id": "1", "label": "upload", "status": "succeeded",
         "artifacts": [{"name": "m", "path": str(cwd / "runs" / "upload.manifest.json")}]},
        {"id": "2", "label": "digits", "status": "succeeded",
         "artifacts": [{"name": "m", "path": str(cwd / "runs" / "digits.manifest.json")}]},
        {"id": "3", "label": "download", "status": "succeeded",
         "artifacts": [{"name": "files", "path": "nodes/download/outputs/files"}]},
        {"id": "4", "label": "report", "status": "succeeded",
         "artifacts": [{"name": p.name, "path": str(p)} for p in sorted(out.iterdir())]},
        {"id": "5", "label": "nothing", "status": "failed", "artifacts": []},
    ]  # fmt: skip
    html = render_report(run_dir, {"name": "p", "status": "succeeded", "nodes": nodes})

    sections = re.findall(r'<section class="out" data-node="(\d)">(.*?)</section>', html, re.S)
    by_node = dict(sections)
    assert sorted(by_node) == ["1", "2", "3", "4"]  # a node without outputs has no section
    assert by_node["1"].count('<img src="data:image/png;base64,') == 6  # at most 6 thumbnails
    assert "s3://b/r1/digits/d0.json" in by_node["2"] and "first 5 of 7 rows" in by_node["2"]
    assert "<th>digit</th>" in by_node["3"] and "first 5 of 7 rows" in by_node["3"]
    assert "<th>predicted</th>" in by_node["4"] and "first 5 of 9 rows" in by_node["4"]
    assert "x" * 800 + "\u2026" in by_node["4"] and "x" * 801 not in by_node["4"]
    embedded = unescape(re.search(r'srcdoc="([^"]*)"', by_node["4"]).group(1))
    assert "<h1>Digits report</h1>" in embedded
    assert "src='data:image/png;base64," in embedded  # its own image, inlined
    # the page may load nothing: a CSP allows only inline data, and frames are sandboxed
    assert "Content-Security-Policy" in html and "default-src 'none'; img-src data:" in html
    assert 'sandbox=""' in by_node["4"]
    assert not re.search(r'<(?:img|script|link)[^>]+(?:src|href)="https?:', html)
