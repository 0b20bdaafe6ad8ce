"""The database functions' SQL: one versioned file per function, ``<app>/sql/NAME.vN.sql``.

A file holds the current definition of one function (the triggers' file also creates its
triggers). Changing a function means a new version: rename the file to the next number,
edit it, and add a migration that carries a literal copy of the new text (migrations copy,
never import, these files, so a database migrated to any step has the SQL of that step).
tests/core/test_sql_lifecycle.py checks that the newest migration defining each function
carries the file's text, and on PostgreSQL that the deployed definitions are the files'.
Nothing at run time reads these files: Python only calls the functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>[0-9]+)\.sql$")
_FUNCTION = re.compile(r"CREATE OR REPLACE (?:FUNCTION|PROCEDURE) (?P<name>[a-z_]+)\(")


@dataclass(frozen=True)
class SqlSource:
    app: str
    name: str
    version: int
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def functions(self) -> list[str]:
        """The functions (and procedures) the file creates, in order."""
        return functions_created(self.text)


def sql_sources() -> list[SqlSource]:
    """Every file under ``oversight/<app>/sql/``, by app and name."""
    found = []
    for path in sorted(_PACKAGE.glob("*/sql/*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path}: SQL files are named NAME.vN.sql")
        found.append(SqlSource(path.parent.parent.name, match["name"], int(match["version"]), path))
    return found


def functions_created(text: str) -> list[str]:
    """The names of the functions and procedures ``text`` creates (a file's, or a
    migration's)."""
    return _FUNCTION.findall(text)
