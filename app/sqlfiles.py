"""Reading SQL files: split a script into statements, remembering where each one starts.

The migration runner stores each migration's statements (as the Supabase CLI does), runs them one
at a time so an error can be reported with its file and line, and compares an applied migration
with its file while ignoring comments and layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the file where the statement's first character stands


@dataclass(frozen=True)
class _Token:
    kind: str  # "code", "literal", "comment", "space", "semicolon"
    start: int
    end: int


def _tokens(sql: str) -> Iterator[_Token]:
    """Lex just enough SQL to know where statements end: strings, identifiers, comments."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        start = i
        if c.isspace():
            while i < n and sql[i].isspace():
                i += 1
            yield _Token("space", start, i)
        elif c == ";":
            yield _Token("semicolon", i, i + 1)
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end
            yield _Token("comment", start, i)
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise ValueError(f"unterminated /* comment starting at offset {start}")
            yield _Token("comment", start, i)
        elif c in "'\"":
            backslash_escapes = (
                c == "'"
                and start > 0
                and sql[start - 1] in "eE"
                and (start < 2 or not (sql[start - 2].isalnum() or sql[start - 2] == "_"))
            )
            i += 1
            while True:
                if i >= n:
                    kind = "string" if c == "'" else "quoted identifier"
                    raise ValueError(f"unterminated {kind} starting at offset {start}")
                if backslash_escapes and sql[i] == "\\":
                    i += 2
                elif sql[i] == c:
                    if i + 1 < n and sql[i + 1] == c:
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
            yield _Token("literal", start, i)
        elif (
            c == "$"
            and (match := _DOLLAR_TAG.match(sql, i))
            and not (start > 0 and (sql[start - 1].isalnum() or sql[start - 1] == "_"))
        ):
            tag = match.group(0)
            end = sql.find(tag, match.end())
            if end == -1:
                raise ValueError(f"unterminated dollar-quoted string {tag} at offset {start}")
            i = end + len(tag)
            yield _Token("literal", start, i)
        else:
            while (
                i < n
                and not sql[i].isspace()
                and sql[i] not in ";'\""
                and not (sql.startswith("--", i) or sql.startswith("/*", i) or sql[i] == "$")
            ):
                i += 1
            if i == start:  # a lone "$" that does not open a dollar quote ($1, say)
                i += 1
            yield _Token("code", start, i)


def split_statements(sql: str) -> list[Statement]:
    """Split a script at top-level semicolons. Comment-only fragments are dropped."""
    statements: list[Statement] = []
    begin: int | None = None
    last = 0
    for token in _tokens(sql):
        if token.kind == "semicolon":
            if begin is not None:
                statements.append(_statement(sql, begin, last))
            begin = None
        elif token.kind in ("code", "literal"):
            if begin is None:
                begin = token.start
            last = token.end
    if begin is not None:
        statements.append(_statement(sql, begin, last))
    return statements


def _statement(sql: str, begin: int, end: int) -> Statement:
    return Statement(sql[begin:end], sql.count("\n", 0, begin) + 1)


def fingerprint(sql: str) -> str:
    """The script with comments, layout and statement separators removed.

    Two scripts with the same fingerprint run the same statements; the Supabase CLI and this
    runner may store a migration's statements with different whitespace and comments.
    """
    return "".join(sql[t.start : t.end] for t in _tokens(sql) if t.kind in ("code", "literal"))
