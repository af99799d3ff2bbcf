"""``python -m snnc`` runs the CLI."""

from snnc.cli import main

main()
