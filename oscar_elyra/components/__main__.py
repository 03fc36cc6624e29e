"""``python -m oscar_elyra.components``: alias of ``python -m oscar_elyra.palette``."""

from __future__ import annotations

from oscar_elyra.palette.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
