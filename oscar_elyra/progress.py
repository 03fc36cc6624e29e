"""Progress bars for transfers and batches (tqdm.auto).

``enabled=None`` means automatic: a widget in Jupyter, a plain bar on a terminal,
nothing when stderr is not interactive. ``enabled=False`` is always silent.
"""

from __future__ import annotations

import threading
from typing import Any

from tqdm.auto import tqdm


def bar(
    total: int | None = None,
    desc: str | None = None,
    *,
    unit: str = "B",
    enabled: bool | None = None,
    **kwargs: Any,
):
    """A thread-safe tqdm.auto bar (bytes by default) honouring ``enabled``."""

    disable = True if enabled is False else (None if enabled is None else False)
    if unit == "B":
        kwargs.setdefault("unit_scale", True)
        kwargs.setdefault("unit_divisor", 1024)
    return _Locked(tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, **kwargs))


class _Locked:
    """Serializes ``update`` calls from worker threads."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self._inner.update(n)

    def set_total(self, total: int | None) -> None:
        with self._lock:
            self._inner.total = total
            self._inner.refresh()

    def set_postfix_str(self, s: str) -> None:
        with self._lock:
            self._inner.set_postfix_str(s, refresh=False)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _Locked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
