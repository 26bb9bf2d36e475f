"""Reading the user's CSV tables and writing outputs, with one clear line for every way a file can be wrong.

Every output goes through `atomic_output`: it is written to a temporary file beside the target and renamed
over it only when complete, so a command that fails never leaves half a file.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError

OTHER_DELIMITERS = (";", "\t", "|")


def check_input_file(path: str | Path, what: str) -> Path:
    """`path` as a Path when it is a readable file; else UserError saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give the path of a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path} cannot be read (permission denied)")
    return path


def read_table(path: str | Path, what: str, required: Sequence[str] = (), **read_csv_kwargs) -> pd.DataFrame:
    """A comma-separated table with a header row, or UserError (missing, a folder, empty, not text, another
    delimiter, a malformed row, a missing required column). `what` names the table in messages ("manifest")."""
    path = check_input_file(path, what)
    try:
        table = pd.read_csv(path, **read_csv_kwargs)
    except pd.errors.EmptyDataError:
        raise UserError(f"{what} {path} is empty; it needs a header row and one row per record") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a text CSV file (it could not be decoded as UTF-8)") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise UserError(f"{what} {path} is not a well-formed CSV file ({detail})") from None
    except (ValueError, TypeError) as exc:  # a dtype the column's values do not fit
        raise UserError(f"{what} {path}: {str(exc).splitlines()[0]}") from None
    _check_delimiter(table, path, what)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise UserError(f"{what} {path} lacks column(s) {', '.join(missing)}; it has: "
                        f"{', '.join(map(str, table.columns[:12]))}")
    return table


def _check_delimiter(table: pd.DataFrame, path: Path, what: str) -> None:
    """A table read as one column whose header holds another delimiter was written with that delimiter."""
    if len(table.columns) != 1:
        return
    header = str(table.columns[0])
    for delimiter in OTHER_DELIMITERS:
        if delimiter in header:
            shown = "\\t" if delimiter == "\t" else delimiter
            raise UserError(f"{what} {path} is separated by '{shown}', not by commas; save it as comma-separated "
                            f"CSV (e.g. pandas: df.to_csv(path, index=False))")


def check_output_path(path: str | Path, what: str) -> Path:
    """`path` as a Path when its folder exists and it is not itself a folder; else UserError."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UserError(f"the folder of {what} {path} does not exist; create {path.parent} first")
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{what} {path} cannot be written (permission denied on {path.parent})")
    return path


def check_output_folder(path: str | Path, what: str) -> Path:
    """`path` when it is a folder, or can be created as one because the folder above it exists; else UserError.
    Nothing is created here: the command makes the folder when it writes its first file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file; give a folder")
    if not path.exists() and not path.parent.is_dir():
        raise UserError(f"the folder above {what} {path} does not exist; create {path.parent} first")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise UserError(f"{what} {path} cannot be written (permission denied)")
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` as CSV (no index) atomically; returns the path."""
    path = Path(path)
    with atomic_output(path) as temporary:
        frame.to_csv(temporary, index=False, quoting=csv.QUOTE_MINIMAL)
    return path


def write_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically; returns the path."""
    path = Path(path)
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path
