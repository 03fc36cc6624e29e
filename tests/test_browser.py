"""A real browser on JupyterLab + Elyra and on a run report: Playwright driving the system
Chromium (Debian package ``chromium``).

JupyterLab starts on a free port with throwaway Jupyter dirs and no other setup, as after
``make install``: the OSCAR palette must be there because the package's Jupyter server extension
creates it. The example pipelines open in the pipeline editor with their own labels and no
error badge, and a node's properties panel shows its inputs. ``report.html`` of an
``oscar-elyra run`` shows each node's outputs and loads nothing but itself.
Screenshots go to ``runs/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from jupyter_dirs import free_port, stop, throwaway_env

from oscar_elyra.elyra import component_files

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("OSCAR_ELYRA_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "runs" / "screenshots"

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(or set OSCAR_ELYRA_CHROMIUM) to run the browser tests",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

pytestmark = pytest.mark.slow
LOAD = 90_000  # ms: first loads of JupyterLab and the pipeline editor on a busy machine


def _labels(pipeline: Path) -> list[str]:
    doc = json.loads(pipeline.read_text())
    return sorted(n["app_data"]["label"] for n in doc["pipelines"][0]["nodes"])


@pytest.fixture(scope="module")
def servers(tmp_path_factory, cluster_env):
    """JupyterLab on the example files, and a finished ``oscar-elyra run`` of digits_sync
    (both started at once): yields (lab URL, token, workspace, run dir)."""
    root = tmp_path_factory.mktemp("browser")
    ws = root / "ws"
    for folder in ("pipelines", "notebooks"):
        shutil.copytree(REPO / folder, ws / folder, ignore=shutil.ignore_patterns("runs"))
    # a node whose component is not in any catalog: the editor must show its error badge
    broken = (ws / "pipelines" / "digits_kfp.pipeline").read_text()
    broken = broken.replace('"oscar-catalog:1e7ff773c7b0"', '"oscar-catalog:000000000000"')
    assert "000000000000" in broken
    (ws / "pipelines" / "broken.pipeline").write_text(broken)

    jupyter = root / "jupyter"
    settings = jupyter / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), uuid.uuid4().hex
    env = throwaway_env(jupyter)
    lab_log = open(root / "lab.log", "wb")  # noqa: SIM115 - closed at teardown
    lab = subprocess.Popen(
        [
            str(BIN / "jupyter-lab"), "--no-browser", "--allow-root", f"--port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ws}",
        ],
        env=env, stdout=lab_log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    # the runner on its own copy, with 4 of the 40 images (same path through the nodes)
    run_ws = root / "run-ws"
    for folder in ("pipelines", "notebooks"):
        shutil.copytree(REPO / folder, run_ws / folder, ignore=shutil.ignore_patterns("runs"))
    for i, png in enumerate(sorted((run_ws / "pipelines").rglob("*.png"))):
        if i % 10:
            png.unlink()
    run_dir = root / "run"
    runner = subprocess.Popen(
        [str(BIN / "oscar-elyra"), "run", "pipelines/digits_sync.pipeline", "-q",
         "--run-dir", str(run_dir)],
        cwd=run_ws, env=cluster_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/status?token={token}", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            try:
                lab.wait(timeout=0.5)  # polls while waiting on the server's exit
                break
            except subprocess.TimeoutExpired:
                continue
        assert lab.poll() is None, (root / "lab.log").read_text(errors="replace")[-3000:]
        out, _ = runner.communicate(timeout=600)
        assert runner.returncode == 0, out.decode(errors="replace")[-3000:]
        yield url, token, ws, run_dir
    finally:
        stop(runner)
        stop(lab)
        lab_log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses root otherwise
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LOAD)
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"))
    context.close()


def _open(page, servers, pipeline: str):
    url, token, _, _ = servers
    # a workspace of its own per test: JupyterLab restores no other tab
    workspace = uuid.uuid4().hex[:8]
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/pipelines/{pipeline}?token={token}")
    page.locator(".d3-node-group").first.wait_for()
    return page


def _node_labels(page) -> list[str]:
    return sorted(
        t.strip() for t in page.locator(".d3-node-group .d3-node-label").all_inner_texts()
    )


def _properties(page, label: str) -> list[str]:
    """Select node ``label``, open the properties panel; the values of its input fields."""
    page.locator(".d3-node-group", has_text=label).first.click()
    page.locator(".toggleOpenPanel-action button").first.click()
    page.get_by_text("Inputs", exact=True).first.wait_for()
    return page.locator("input").evaluate_all("els => els.map(e => e.value)")


def test_kfp_pipeline_palette_labels_properties(page, servers):
    _, _, ws, _ = servers
    _open(page, servers, "digits_kfp.pipeline")
    assert _node_labels(page) == _labels(ws / "pipelines" / "digits_kfp.pipeline")
    # the OSCAR palette category, with every component, without any install command
    page.locator(".togglePalette-action button").first.click()
    page.locator('.palette-flyout-category[data-id="OSCAR"]').click()
    items = page.locator(".palette-list-item")
    items.first.wait_for()
    names = sorted(yaml.safe_load(p.read_text())["name"] for p in component_files())
    assert sorted(t.strip() for t in items.all_inner_texts()) == names
    # a node's properties: its label and inputs as in the file
    values = _properties(page, "grayify-sync")
    assert "grayify-sync" in values and "grayify" in values
    assert page.get_by_text("input_manifest", exact=False).count() > 0
    assert page.get_by_text("upload: manifest").count() > 0
    # the editor has validated the nodes against the palette by now: no error badge
    assert page.locator('[data-id$="_error"]').count() == 0


def test_generic_pipeline_labels_properties(page, servers):
    _, _, ws, _ = servers
    _open(page, servers, "digits_sync.pipeline")
    assert _node_labels(page) == _labels(ws / "pipelines" / "digits_sync.pipeline")
    page.locator(".d3-node-group", has_text="grayify-sync").first.click()
    page.locator(".toggleOpenPanel-action button").first.click()
    page.get_by_text("Environment Variables").first.wait_for()
    values = page.locator("input").evaluate_all("els => els.map(e => e.value)")
    assert "grayify-sync" in values and "../notebooks/oscar_invoke_sync.ipynb" in values
    assert "SERVICE" in values and "grayify" in values
    assert page.locator('[data-id$="_error"]').count() == 0
    # palette components exist only in the Kubeflow Pipelines (and Airflow) editors
    page.locator(".togglePalette-action button").first.click()
    assert page.locator('.palette-flyout-category[data-id="OSCAR"]').count() == 0


def test_error_badge_is_seen(page, servers):
    """The badge check above can fail: a node whose component is in no catalog gets one."""
    _open(page, servers, "broken.pipeline")
    badge = page.locator('[data-id$="_error"]')
    badge.first.wait_for()
    assert badge.count() == 1
    upload = page.locator(".d3-node-group", has_text="upload").first
    assert upload.locator('[data-id$="_error"]').count() == 1


def test_run_report_previews_offline(page, servers):
    _, _, _, run_dir = servers
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto((run_dir / "report.html").as_uri())
    record = json.loads((run_dir / "run.json").read_text())
    sections = page.locator("section.out")
    assert sections.count() == len(record["nodes"])
    # thumbnails of the uploaded images, decoded by the browser
    upload = page.locator("section.out", has_text="upload").first
    widths = upload.locator(".thumbs img").evaluate_all("els => els.map(e => e.naturalWidth)")
    assert len(widths) == 4 and all(w > 0 for w in widths)
    # first rows of the report node's predictions.csv, and its embedded HTML report
    report = page.locator("section.out", has_text="report.html").first
    assert report.locator("table.rows").first.locator("th", has_text="predicted").count() == 1
    frame = report.locator("iframe.embed").first
    frame.scroll_into_view_if_needed()
    inner = frame.content_frame
    assert "Digits report" in inner.locator("body").inner_text()
    confusion = inner.locator("img").first
    assert confusion.evaluate("e => e.complete && e.naturalWidth") > 0
    # nothing loaded but the page itself (images are inline data)
    assert [u for u in requested if not u.startswith(("file:", "data:", "about:"))] == []


def test_node_notebooks_show_their_results(servers):
    """The executed notebooks of that run: predictions as a table, no TqdmWarning."""
    _, _, _, run_dir = servers
    notebooks = sorted(run_dir.glob("nodes/*/*.ipynb"))
    assert len(notebooks) == 4
    for path in notebooks:
        assert "TqdmWarning" not in path.read_text(), path.name  # ipywidgets is installed
    digits = json.loads(
        next(p for p in notebooks if p.parent.name.startswith("digits")).read_text()
    )
    tables = [
        "".join(o["data"]["text/html"])
        for cell in digits["cells"]
        for o in cell.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    assert len(tables) == 2  # the artifact list, then the predictions
    assert "<th>digit</th>" in tables[1] and "<th>file</th>" in tables[1]
