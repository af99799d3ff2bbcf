"""Subcommands of the ``snnc`` CLI, one module per command group."""
