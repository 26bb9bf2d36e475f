"""Entry points of the command-line tools: a user's mistake is one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from radscreen.errors import EXIT_USER_ERROR, UserError
from radscreen.utils.console import print_error


def run_command(main: Callable[[], int | None]) -> None:
    """Run an argparse tool's main(): exit with its return code, or print a UserError as one line and exit 2."""
    try:
        code = main()
    except UserError as exc:
        print_error(str(exc))
        code = EXIT_USER_ERROR
    sys.exit(code or 0)
