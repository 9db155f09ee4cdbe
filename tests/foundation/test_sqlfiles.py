"""Statement splitting and fingerprints (no database needed)."""

from __future__ import annotations

import pytest

from app.sqlfiles import fingerprint, split_statements


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_splits_at_top_level_semicolons_and_keeps_start_lines() -> None:
    statements = split_statements("select 1;\n\n-- note\nselect 2;\nselect\n3")
    assert [(s.text, s.line) for s in statements] == [
        ("select 1", 1),
        ("select 2", 4),
        ("select\n3", 5),
    ]


@pytest.mark.parametrize(
    "body",
    [
        "select 'a;b'",
        "select 'it''s;'",
        "select E'\\';'",
        'select ";" from t',
        "select $$;$$",
        "select $fn$ begin; end $fn$",
        "select /* ; /* nested; */ ; */ 1",
        "select 1 -- ; comment\n",
    ],
)
def test_semicolons_inside_literals_and_comments_do_not_split(body: str) -> None:
    assert len(split_statements(f"{body};\nselect 2;")) == 2


def test_positional_parameters_are_not_dollar_quotes() -> None:
    assert texts("prepare p as select $1; select 2;") == ["prepare p as select $1", "select 2"]


def test_comment_only_fragments_are_dropped() -> None:
    assert texts("-- header\n;\n/* nothing */;\n") == []


@pytest.mark.parametrize("broken", ["select 'open", "select $x$ open", "/* open", 'select "x'])
def test_unterminated_input_is_an_error(broken: str) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_statements(broken)


def test_fingerprint_ignores_comments_and_layout_but_not_literals() -> None:
    assert fingerprint("-- c\ncreate table a (\n  x int\n);") == fingerprint(
        "create table a (x int)"
    )
    assert fingerprint("select 'a  b'") != fingerprint("select 'a b'")
    assert fingerprint("select 1") != fingerprint("select 2")
