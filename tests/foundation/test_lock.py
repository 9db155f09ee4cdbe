"""Reproducible installs: uv.lock pins the whole dependency set, and the requirements files that
`make` installs (with pip --require-hashes) are exactly what the lock exports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

UV = Path(sys.executable).parent / "uv"
REQUIREMENTS = PROJECT_ROOT / "requirements"
EXPORT = ["export", "--frozen", "--no-emit-project", "--no-dev", "--format", "requirements-txt"]


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    assert UV.exists(), f"{UV} is missing: install the dev set (make install-dev)"
    return subprocess.run(
        [str(UV), *args, "--quiet"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def requirement_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^ ;\\]+)", path.read_text(), re.MULTILINE)
    return dict(found)


def test_the_lock_agrees_with_pyproject() -> None:
    result = uv("lock", "--check", "--offline")
    assert result.returncode == 0, (
        "uv.lock does not match pyproject.toml; run `make lock` and commit the result:\n"
        + result.stderr
    )


@pytest.mark.parametrize(
    ("file_name", "extra"), [("runtime.txt", []), ("dev.txt", ["--extra", "dev"])]
)
def test_requirements_files_are_the_lock_exported(file_name: str, extra: list[str]) -> None:
    result = uv(*EXPORT, *extra)
    assert result.returncode == 0, result.stderr
    committed = (REQUIREMENTS / file_name).read_text()
    assert requirement_lines(committed) == requirement_lines(result.stdout), (
        f"requirements/{file_name} is not what uv.lock exports; run `make lock`"
    )


def test_every_requirement_is_pinned_and_hashed() -> None:
    for path in REQUIREMENTS.glob("*.txt"):
        entries = re.split(r"\n(?=[a-z0-9])", "\n".join(requirement_lines(path.read_text())))
        for entry in entries:
            assert re.match(r"^[a-z0-9][a-z0-9._-]*==", entry), f"{path.name}: unpinned {entry}"
            assert "--hash=sha256:" in entry, f"{path.name}: no hash for {entry.split()[0]}"


def test_the_runtime_set_has_no_dev_tools_and_the_dev_set_has_all_of_it() -> None:
    runtime, dev = pins(REQUIREMENTS / "runtime.txt"), pins(REQUIREMENTS / "dev.txt")
    assert {"flask", "gunicorn", "psycopg", "psycopg-pool"} <= runtime.keys()
    assert not {"pytest", "ruff", "sqlfluff", "hypothesis", "uv"} & runtime.keys()
    assert runtime.items() <= dev.items()
