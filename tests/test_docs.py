"""The documentation: the site builds strictly, its code runs as written (smaller), and the
README stays a newcomer's door (at most 300 lines, no paths outside the repository)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: sizes the docs use, and the small ones the test runs them with
SMALLER = {
    "num_envs=4096": "num_envs=16",
    "BookBatch(4096,": "BookBatch(8,",
    "random_message_stream(4096, 256": "random_message_stream(8, 256",
    "num_envs=256, steps=200": "num_envs=16, steps=20",
    "episodes=64": "episodes=8",
    "episode_steps=200": "episode_steps=40",
    "MarketMakingVectorEnv(64,": "MarketMakingVectorEnv(4,",
    "seconds=60, num_envs=1000": "seconds=5, num_envs=16",
}


def python_blocks(path: Path) -> list[str]:
    """The page's python blocks, but those that name placeholder files."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    return [b for b in blocks if "_..." not in b]


def smaller(code: str) -> str:
    for big, small in SMALLER.items():
        code = code.replace(big, small)
    return code


@pytest.mark.parametrize(
    "page",
    ["getting-started.md", "model.md", "agents.md", "report.md", "historical.md", "optimum.md"],
)
def test_the_docs_code_runs(page):
    blocks = python_blocks(DOCS / page)
    assert blocks
    scope: dict = {}
    for block in blocks:
        exec(smaller(block), scope)


def test_the_site_builds_strictly(tmp_path):
    if shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]' installs it)")
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    proc = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "kernels" / "index.html").exists()


def test_the_readme_is_a_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    assert "../" not in text  # no paths outside the repository
    assert 'pip install -e ".[dev]" && pytest' in text  # the test command .ci/run runs
    for link in re.findall(r"\]\((docs/[^)]+)\)", text):
        assert (ROOT / link).is_file(), link
