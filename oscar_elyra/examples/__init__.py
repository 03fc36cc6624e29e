"""Worked examples on top of the node operations (they need the ``local`` extra).

- :mod:`~oscar_elyra.examples.digits`: sample handwritten digits and the digits classifier's
  report (``from oscar_elyra.examples.digits import sample_digits, digits_report``).
- :mod:`~oscar_elyra.examples.deepaas_digits_model`: the digits classifier as a DEEPaaS v2
  model (entry point ``deepaas-digits`` in the group ``deepaas.v2.model``), served by the
  ``deepaas-digits`` example service through ``deepaas-cli``.
"""
