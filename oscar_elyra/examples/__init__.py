"""Worked examples on top of the node operations (they need the ``local`` extra).

- :mod:`~oscar_elyra.examples.digits`: sample handwritten digits and the digits classifier's
  report (``from oscar_elyra.examples.digits import sample_digits, digits_report``).
"""
