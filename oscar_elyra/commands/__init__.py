"""Sub-commands of the ``oscar-elyra`` CLI, one module per area."""
