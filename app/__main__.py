"""`python -m app` is the `carehub` command."""

from app.cli import main

main()
