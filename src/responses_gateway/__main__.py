"""`python -m responses_gateway` runs the CLI."""

from __future__ import annotations

from responses_gateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
