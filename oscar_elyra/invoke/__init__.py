"""Invoking OSCAR services: sync :func:`run`, async :func:`submit`/:func:`wait`, batch :func:`map`.

- :mod:`~oscar_elyra.invoke.sync`: ``POST /run``, the streaming base64 body codec, :class:`Result`.
- :mod:`~oscar_elyra.invoke.jobs`: inputs through a service's input path, :class:`Job`,
  completion from job records, output attribution, resumable submissions (:func:`resume`).
- :mod:`~oscar_elyra.invoke.batch`: :func:`map` over many files with retries and resume.
"""

from __future__ import annotations

from oscar_elyra.invoke.batch import BatchResult, map
from oscar_elyra.invoke.jobs import Job, resume, submit, wait
from oscar_elyra.invoke.sync import Result, run

__all__ = ["BatchResult", "Job", "Result", "map", "resume", "run", "submit", "wait"]
