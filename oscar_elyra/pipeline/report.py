"""``report.html``: a self-contained run report (timeline, status table, links, and a preview
of what each node produced); no CDN, no JS, and a Content-Security-Policy that lets the page
load nothing but its own inline data.

Previews come from local files only: each node's outputs (files, folders such as a download's
KFP folder artifact) and, for artifact manifests, the local copies they list (``path``, or an
uploaded file's ``source``); objects only in object storage are listed by URI. Images become
thumbnails (data URIs), JSON the first rows of one table, CSV its first rows, text an excerpt,
and an HTML report a node published is embedded (a sandboxed ``srcdoc`` frame, its own images
inlined).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from oscar_elyra.artifacts import MANIFEST_KIND
from oscar_elyra.nodes.display import PREVIEW_BYTES, json_rows, preview_kind
from oscar_elyra.redact import redact

COLORS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "running": "#1565c0",
    "pending": "#9e9e9e",
    "not_run": "#bdbdbd",
    "skipped": "#e0e0e0",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em;margin-bottom:.2em} .meta{color:#555;margin-bottom:1.5em}
table{border-collapse:collapse;width:100%;margin-top:1em;font-size:.9em}
th,td{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5} .st{font-weight:600} .err{color:#c62828;white-space:pre-wrap}
.gantt{position:relative;border-left:1px solid #999;margin:1em 0 0 14em}
.row{position:relative;height:1.6em;border-bottom:1px dotted #eee}
.lbl{position:absolute;left:-14em;width:13.5em;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap;font-size:.85em;line-height:1.6em}
.bar{position:absolute;top:.25em;height:1.1em;border-radius:3px;min-width:2px}
.axis{color:#777;font-size:.75em;margin-left:14em;display:flex;justify-content:space-between}
code{font-size:.85em}
.out{border-top:1px solid #ddd;margin-top:1em;padding-top:.5em}
.out h3{font-size:1em;margin:.3em 0}
.thumbs{display:flex;flex-wrap:wrap;gap:.6em}
.thumbs figure{margin:0;text-align:center;font-size:.75em;color:#555}
.thumbs img{max-width:96px;max-height:96px;border:1px solid #ccc;
background:#fff}
.rows{width:auto;font-size:.8em} .excerpt{background:#f7f7f7;padding:.5em;max-height:12em;
overflow:auto;font-size:.8em} .more{color:#777;font-size:.8em}
iframe.embed{width:100%;height:28em;border:1px solid #ccc}
"""

#: the page and the reports it embeds load nothing from anywhere: only inline data
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
THUMBS = 6
ROWS = 5
TEXT_CHARS = 800
THUMB_BYTES = 512 * 1024
EMBED_BYTES = 2 * 1024 * 1024
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
_MIME[".webp"] = "image/webp"
_SRC = re.compile(r"""(\ssrc\s*=\s*)(["'])([^"':]+)\2""", re.IGNORECASE)


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _link(run_dir: Path, path: str | None, text: str | None = None) -> str:
    if not path:
        return ""
    p = Path(path)
    target = p if p.is_absolute() else run_dir / p
    try:
        href = os.path.relpath(target, run_dir)
    except ValueError:
        href = target.as_uri()
    href = Path(href).as_posix()
    return f'<a href="{escape(href, quote=True)}">{escape(text or p.name)}</a>'


def _data_uri(path: Path) -> str | None:
    mime = _MIME.get(path.suffix.lower())
    if mime is None or path.stat().st_size > THUMB_BYTES:
        return None
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_images(html: str, folder: Path) -> str:
    """``html`` with its relative image sources next to it (``report.png``) as data URIs."""

    def swap(m: re.Match[str]) -> str:
        rel = m.group(3)
        target = (folder / rel).resolve()
        if ".." in Path(rel).parts or not target.is_file():
            return m.group(0)
        uri = _data_uri(target)
        return m.group(0) if uri is None else f"{m.group(1)}{m.group(2)}{uri}{m.group(2)}"

    return _SRC.sub(swap, html)


def _table(rows: list[dict[str, Any]], total: int) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    more = f'<div class="more">first {len(rows)} of {total} rows</div>' if total > len(rows) else ""
    return f'<table class="rows"><tr>{head}</tr>{body}</table>{more}'


def _manifest(path: Path) -> dict[str, Any] | None:
    """The artifact manifest at ``path`` (any name: palette outputs have no suffix), or None."""
    if path.stat().st_size > PREVIEW_BYTES:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == MANIFEST_KIND else None


def _local_copy(art: dict[str, Any], bases: list[Path]) -> Path | None:
    for key in ("path", "source"):
        value = art.get(key)
        if not isinstance(value, str) or not value or "://" in value:
            continue
        for base in bases:
            candidate = Path(value) if Path(value).is_absolute() else base / value
            if candidate.is_file():
                return candidate.resolve()
    return None


class _Preview:
    """What one node produced, gathered from its output files."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.seen: set[Path] = set()
        self.remote: list[dict[str, Any]] = []

    def add_file(self, path: Path) -> None:
        path = path.resolve()
        if path not in self.seen and path.is_file():
            self.seen.add(path)
            self.files.append(path)

    def add(self, path: Path) -> None:
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file())[:200]:
                self.add_file(f)
            return
        if not path.is_file():
            return
        manifest = _manifest(path)
        if manifest is None:
            self.add_file(path)
            return
        # a node's manifest sits in <cwd>/runs/ (notebooks) or in its outputs folder
        bases = [path.parent.parent, path.parent]
        for art in manifest.get("artifacts") or []:
            if not isinstance(art, dict):
                continue
            local = _local_copy(art, bases)
            if local is not None:
                self.add_file(local)
            else:
                self.remote.append(art)

    def html(self) -> str:
        parts: list[str] = []
        by_kind: dict[str, list[Path]] = {}
        for f in self.files:
            by_kind.setdefault(preview_kind(f.name), []).append(f)
        thumbs = []
        for f in by_kind.get("image", [])[:THUMBS]:
            uri = _data_uri(f)
            if uri:
                thumbs.append(
                    f'<figure><img src="{uri}" alt="{escape(f.name, quote=True)}">'
                    f"<figcaption>{escape(f.name)}</figcaption></figure>"
                )
        if thumbs:
            parts.append(f'<div class="thumbs">{"".join(thumbs)}</div>')
        rows: list[dict[str, Any]] = []
        jsons = [f for f in by_kind.get("json", []) if f.stat().st_size <= PREVIEW_BYTES]
        for f in jsons:
            try:
                rows.extend(json_rows(json.loads(f.read_text(encoding="utf-8")), f.name))
            except (ValueError, UnicodeDecodeError):
                continue
        if rows:
            parts.append(_table(rows[:ROWS], len(rows)))
        for f in by_kind.get("csv", [])[:2]:
            with open(f, newline="", encoding="utf-8", errors="replace") as fh:
                reader = csv.DictReader(fh)
                head = [dict(r) for _, r in zip(range(ROWS), reader, strict=False)]
                total = len(head) + sum(1 for _ in reader)
            if head:
                parts.append(f"<div>{escape(f.name)}</div>{_table(head, total)}")
        for f in by_kind.get("text", [])[:2]:
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read(TEXT_CHARS + 1)
            cut = "\u2026" if len(text) > TEXT_CHARS else ""
            parts.append(
                f'<div>{escape(f.name)}</div><pre class="excerpt">'
                f"{escape(text[:TEXT_CHARS])}{cut}</pre>"
            )
        for f in by_kind.get("html", [])[:2]:
            if f.stat().st_size > EMBED_BYTES:
                continue
            doc = _inline_images(f.read_text(encoding="utf-8", errors="replace"), f.parent)
            parts.append(
                f'<div>{escape(f.name)}</div><iframe class="embed" sandbox="" '
                f'title="{escape(f.name, quote=True)}" srcdoc="{escape(doc, quote=True)}">'
                "</iframe>"
            )
        if self.remote:
            listed = [
                {"name": a.get("name") or str(a.get("uri", "")).rsplit("/", 1)[-1],
                 "size": a.get("size", ""), "uri": a.get("uri", "")}
                for a in self.remote[:ROWS]
            ]  # fmt: skip
            parts.append(f"<div>in object storage</div>{_table(listed, len(self.remote))}")
        return "".join(parts)


def _outputs(run_dir: Path, node: dict[str, Any]) -> str:
    """The preview section of one node ("" when it produced nothing to show)."""
    preview = _Preview()
    for art in node.get("artifacts") or []:
        path = art.get("path")
        if path:
            p = Path(path)
            preview.add(p if p.is_absolute() else run_dir / p)
    body = preview.html()
    if not body:
        return ""
    nid = escape(str(node.get("id")), quote=True)
    return (
        f'<section class="out" data-node="{nid}"><h3>{escape(str(node.get("label")))}</h3>'
        f"{body}</section>"
    )


def render_report(run_dir: Path, record: dict[str, Any]) -> str:
    """The HTML text of the report for ``record`` (a run.json dict) in ``run_dir``."""
    nodes = record.get("nodes", [])
    spans = [(n, _ts(n.get("start")), _ts(n.get("end"))) for n in nodes]
    starts = [s for _, s, _ in spans if s is not None]
    ends = [e for _, _, e in spans if e is not None] + starts
    t0 = min(starts) if starts else 0.0
    total = max((max(ends) - t0) if ends else 0.0, 1e-6)

    rows = []
    for node, start, end in spans:
        bar = ""
        if start is not None:
            finish = end if end is not None else start
            left = 100.0 * (start - t0) / total
            width = max(100.0 * (finish - start) / total, 0.3)
            color = COLORS.get(node.get("status"), "#9e9e9e")
            tip = f"{node.get('label')}: {node.get('status')} {node.get('seconds') or 0:.2f}s"
            bar = (
                f'<div class="bar" title="{escape(tip, quote=True)}" style="left:{left:.2f}%;'
                f'width:{width:.2f}%;background:{color}"></div>'
            )
        rows.append(
            f'<div class="row"><div class="lbl">{escape(str(node.get("label")))}</div>{bar}</div>'
        )

    table = []
    for node in nodes:
        status = node.get("status", "")
        links = [_link(run_dir, node.get("log"), "log")]
        if node.get("notebook") and status in ("succeeded", "failed"):
            links.append(_link(run_dir, node.get("notebook"), "notebook"))
        arts = "<br>".join(
            _link(run_dir, a.get("path"), a.get("name")) for a in node.get("artifacts") or []
        )
        err = node.get("error") or {}
        err_html = ""
        if err:
            err_html = f'<div class="err">{escape(str(err.get("message", "")))}</div>'
            cell = err.get("cell")
            if cell and cell.get("source"):
                err_html += f"<pre><code>{escape(cell['source'])}</code></pre>"
        seconds = node.get("seconds")
        table.append(
            "<tr>"
            f"<td>{escape(str(node.get('label')))}<br><code>{escape(str(node.get('id')))}</code></td>"
            f"<td>{escape(str(node.get('kind')))}</td>"
            f'<td class="st" style="color:{COLORS.get(status, "#222")}">{escape(status)}</td>'
            f"<td>{escape(str(node.get('start') or ''))}</td>"
            f"<td>{'' if seconds is None else f'{seconds:.2f}'}</td>"
            f"<td>{' '.join(x for x in links if x)}</td><td>{arts}</td><td>{err_html}</td></tr>"
        )

    params = "".join(
        f"<li><code>{escape(k)}</code> = {escape(repr(v))}</li>"
        for k, v in (record.get("parameters") or {}).items()
    )
    outputs = "".join(_outputs(run_dir, node) for node in nodes)
    color = COLORS.get(record.get("status"), "#222")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{escape(str(record.get("name")))} run report</title><style>{_CSS}</style></head>
<body>
<h1>Pipeline {escape(str(record.get("name")))}:
<span style="color:{color}">{escape(str(record.get("status")))}</span></h1>
<div class="meta">Run {escape(str(record.get("run_name")))} &middot; started
{escape(str(record.get("started")))} &middot; ended {escape(str(record.get("ended")))}
&middot; {escape(str(record.get("workers")))} workers &middot;
<code>{escape(str(record.get("pipeline")))}</code></div>
{"<h2>Parameters</h2><ul>" + params + "</ul>" if params else ""}
<h2>Timeline</h2>
<div class="gantt">{"".join(rows)}</div>
<div class="axis"><span>0 s</span><span>{total:.1f} s</span></div>
<h2>Nodes</h2>
<table><tr><th>Node</th><th>Kind</th><th>Status</th><th>Start (UTC)</th><th>Seconds</th>
<th>Files</th><th>Artifacts</th><th>Error</th></tr>
{"".join(table)}
</table>
{"<h2>Outputs</h2>" + outputs if outputs else ""}
</body></html>
"""


def write_report(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``report.html`` (temp name then rename) and return its path."""
    path = Path(run_dir) / "report.html"
    tmp = path.with_name(f".report.html.tmp{os.getpid()}")
    tmp.write_text(redact(render_report(Path(run_dir), record)), encoding="utf-8")
    os.replace(tmp, path)
    return path
