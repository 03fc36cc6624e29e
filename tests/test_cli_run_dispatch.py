"""``oscar-elyra run`` picks the pipeline runner or the service call from its arguments."""

from __future__ import annotations

import pytest

from oscar_elyra.commands.data import run_service
from oscar_elyra.commands.pipeline import run_file
from oscar_elyra.commands.run import run


@pytest.mark.parametrize(
    "args, target",
    [
        (["cowsay", "-i", "hi"], run_service),
        (["cowsay", "-i", "my.pipeline"], run_service),
        (["cowsay", "--output", "x.pipeline", "-i", "hi"], run_service),
        (["p/x.pipeline"], run_file),
        (["--resume", "runs/x-1", "p/x.pipeline"], run_file),
        (["-w", "2", "p/x.pipeline", "--only", "a"], run_file),
    ],
)
def test_dispatch(args, target):
    assert run._target(args) is target
