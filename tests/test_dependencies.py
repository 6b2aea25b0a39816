"""The lock files install what pyproject.toml asks for, so a dependency added there is locked too."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", re.MULTILINE)


def _pins(lock: str) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall((ROOT / lock).read_text())}


def _unmet(requirements: list[str], pins: dict[str, str]) -> list[str]:
    unmet = []
    for line in requirements:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} (locked: {version or 'absent'})")
    return unmet


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        ("requirements-dev.lock", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]),
    ],
)
def test_every_dependency_is_locked_at_a_version_it_accepts(lock, requirements):
    assert _unmet(requirements, _pins(lock)) == [], f"refresh {lock}: see docs/dependencies.md"


def test_every_locked_package_carries_hashes():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
        unhashed = [b.split(" ", 1)[0] for b in blocks if "==" in b.split("\n", 1)[0] and "--hash=sha256:" not in b]
        assert unhashed == [], lock


def test_the_app_lock_agrees_with_the_development_lock():
    app, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {name: (version, dev.get(name)) for name, version in app.items() if dev.get(name) != version} == {}
