"""`lxhub` with its process commands, for the benchmark only.

Used by `bench/run.py` when `python -m hub.cli --help` does not list `serve` (the entry point that
attaches `workers.commands` is not wired yet): it attaches the same click commands to the same
root and runs it, so the processes are exactly what `lxhub serve|worker|beat` will run.
"""

from __future__ import annotations

from hub.cli import main
from workers.commands import COMMANDS

for _command in COMMANDS:
    if _command.name and _command.name not in main.commands:
        main.add_command(_command)

if __name__ == "__main__":
    main()
