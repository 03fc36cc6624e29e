"""What notebooks show: ``nodes.show`` (images inline, JSON predictions as one table, text as
text) and ``Result`` (a text answer as text), through a real IPython shell in a subprocess
(an IPython singleton in the test process would make every later test look like a notebook)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from oscar_elyra.artifacts import Artifact
    from oscar_elyra.invoke.sync import Result
    from oscar_elyra.nodes import show

    shell = InteractiveShell.instance()
    folder = Path(sys.argv[1])
    arts = [
        Artifact(uri=f"s3://b/run/{p.name}", size=p.stat().st_size, sha256=None, path=str(p))
        for p in sorted(folder.iterdir())
    ]
    with capture_output() as shown:
        assert show(arts) is None
    cow = Result(service="cowsay", kind="text", _text=" ______\\n< moo! >\\n ------")
    bundle, _ = shell.display_formatter.format(cow)
    print(json.dumps({
        "outputs": [sorted(o.data) for o in shown.outputs],
        "html": [o.data.get("text/html", "") for o in shown.outputs],
        "stdout": shown.stdout,
        "cow": bundle,
    }))
    """
)


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="PNG")
    return buf.getvalue()


def test_show_and_result_display_what_was_produced(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png())
    for i, digit in enumerate((3, 7)):
        probs = [0.0] * 10
        probs[digit] = 0.97
        (folder / f"digit-{digit}-{i}.json").write_text(
            json.dumps({"digit": digit, "probabilities": probs, "input": f"d{i}.png"})
        )
    (folder / "note.txt").write_text("hello as text")
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    # the artifact table, the image, and one table of the JSON predictions
    kinds = got["outputs"]
    assert sum("image/png" in k for k in kinds) == 1
    tables = [h for h in got["html"] if "<table" in h]
    assert len(tables) == 2  # the artifact list and the predictions
    predictions = tables[1]
    assert "digit-3-0.json" in predictions and "digit-7-1.json" in predictions
    assert "<th>digit</th>" in predictions and "d1.png" in predictions
    assert "--- note.txt\nhello as text" in got["stdout"]
    # a text answer displays as the text, not as Result(...)
    assert got["cow"]["text/plain"] == " ______\n< moo! >\n ------"
    assert "text/html" not in got["cow"]


def test_repr_helpers_shared_with_the_report():
    from oscar_elyra.nodes.display import json_rows, preview_kind

    assert preview_kind("x.PNG") == "image" and preview_kind("r.html") == "html"
    assert preview_kind("p.csv") == "csv" and preview_kind("blob", "text/plain") == "text"
    assert preview_kind("model.bin") == ""
    rows = json_rows({"digit": 3, "probabilities": list(range(40))}, "a.json")
    assert rows[0]["file"] == "a.json" and rows[0]["digit"] == 3
    assert rows[0]["probabilities"].endswith("\u2026")  # long values cut short
    assert json_rows([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
