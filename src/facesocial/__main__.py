"""``python -m facesocial`` runs the command line."""

from facesocial.cli import main

main()
