"""``report.html``: a self-contained run report (timeline, status table, links); no CDN, no JS."""

from __future__ import annotations

import os
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

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
"""


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
    color = COLORS.get(record.get("status"), "#222")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
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
</body></html>
"""


def write_report(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``report.html`` (temp name then rename) and return its path."""
    path = Path(run_dir) / "report.html"
    tmp = path.with_name(f".report.html.tmp{os.getpid()}")
    tmp.write_text(redact(render_report(Path(run_dir), record)), encoding="utf-8")
    os.replace(tmp, path)
    return path
