"""``python -m jupyter_condasvc``: the CLI, for environments whose ``jupyter`` is not on PATH."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
