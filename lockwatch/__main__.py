"""`python -m lockwatch`: run a program under lockwatch (see `python -m lockwatch --help`)."""
import sys

from .cli import main

sys.exit(main(prog_name="python -m lockwatch"))
