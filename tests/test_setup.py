"""What `make serve` sets up on a fresh machine: the package as pip builds it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "resolvers", "db", "server", "bench")
# One of setuptools' build hooks, as pip calls it for `pip install -e .` or `pip wheel .`.
BUILD = """
import sys
import setuptools.build_meta as backend
print("built", getattr(backend, sys.argv[1])(sys.argv[2]))
"""

# A line as the warnings module prints it: "file:line: Category: message".
WARNING = re.compile(r"^\S+:\d+: \w+: .*$", re.MULTILINE)


def shipped_files() -> set[str]:
    """Every file of the packages that the wheel must carry: code and the data beside it."""
    files = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.parent.name != "out":
                files.add(path.relative_to(ROOT).as_posix())
    return files


def build(hook: str, tmp_path: Path) -> tuple[Path, str]:
    """The wheel that `hook` builds from a copy of the project, and what setuptools printed."""
    source = tmp_path / hook
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "out")
        )
    built = subprocess.run(
        [sys.executable, "-W", "default", "-c", BUILD, hook, str(tmp_path / "wheels")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = re.findall(r"^built (.+\.whl)$", built.stdout, re.MULTILINE)
    return tmp_path / "wheels" / wheel, built.stdout + built.stderr


def test_the_package_builds_without_a_setuptools_warning(tmp_path: Path) -> None:
    _, output = build("build_editable", tmp_path)
    assert WARNING.findall(output) == []
    wheel, output = build("build_wheel", tmp_path)
    assert WARNING.findall(output) == []
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert in_wheel == shipped_files()
