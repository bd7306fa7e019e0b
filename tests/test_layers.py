"""The layers: kernels, owners, agents and tools, arrows pointing down.

The engine (``fastlob``) never imports the agents; nothing but the owners (the modules that
allocate the kernels' state and drive them) imports ``fastlob._kernels`` or reads an env's
private attributes; and installed, fastlob claims the import names ``fastlob`` and
``fastlob_agents`` and nothing else, so that it lives beside the OpenAI Agents SDK (which
installs ``agents``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_under_fastlob_imports_the_agents():
    pattern = re.compile(r"^\s*(from|import)\s+(agents|fastlob_agents)\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "fastlob").rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_importing_fastlob_loads_no_agent_module():
    code = (
        "import sys, fastlob, fastlob.cli; print(sorted(m for m in sys.modules if 'agents' in m))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


#: the owners: they allocate the kernels' state, check arguments at the boundary and call the
#: kernels (profiling owns instrumented copies of a simulator's state and times its kernels;
#: the calibration owns the book it replays a LOBSTER day through)
OWNERS = {
    "fastlob/__init__.py",
    "fastlob/_numba.py",
    "fastlob/book.py",
    "fastlob/vector.py",
    "fastlob/env.py",
    "fastlob/historical.py",
    "fastlob/as_env.py",
    "fastlob/profiling.py",
    "fastlob/data/lobster.py",
    "fastlob/data/synthetic.py",
    "fastlob/data/simulated.py",
    "fastlob/calibration.py",
}


def above_the_owners() -> list[Path]:
    """Every source above the owners: fastlob's tools, the agents, the notebooks."""
    engine = [
        p
        for p in (ROOT / "fastlob").rglob("*.py")
        if "_kernels" not in p.parts and str(p.relative_to(ROOT)) not in OWNERS
    ]
    return engine + sorted((ROOT / "agents").glob("*.py")) + sorted(ROOT.glob("notebooks/*.ipynb"))


def test_nothing_above_the_owners_reaches_into_kernels_or_private_state():
    kernels = re.compile(r"fastlob\._kernels|from fastlob import _kernels")
    private = re.compile(r"\benv\._[a-z]")
    offenders = [
        f"{path.relative_to(ROOT)}: {pattern.pattern}"
        for path in above_the_owners()
        for pattern in (kernels, private)
        if pattern.search(path.read_text())
    ]
    assert offenders == []
    assert len(above_the_owners()) > 15  # the rule reaches the tools, agents and notebooks


def test_the_envs_public_surface_is_read_only_and_follows_the_state():
    import numpy as np

    from fastlob import MarketMakingConfig, MarketMakingVectorEnv

    env = MarketMakingVectorEnv(3, config=MarketMakingConfig(episode_steps=4, warmup=2.0))
    obs, _ = env.reset(seed=1)
    views = (env.observation, env.terminated, env.truncated, env.applied_actions, env.inventory,
             env.mid, env.step_count, env.quote_remaining, env.flow_events,
             env.running_metric("quoted_qty"))  # fmt: skip
    for view in views:
        with pytest.raises(ValueError, match="read-only"):
            view[...] = 0
    action = np.tile(np.float32([-3.0, 1.0, 2.0, 1.0, 0.0]), (3, 1))  # the bid crosses: a fill
    for _ in range(4):
        obs, _, terminated, _, info = env.step(action)
        np.testing.assert_array_equal(env.observation, obs)
        np.testing.assert_array_equal(env.terminated, terminated)
        np.testing.assert_array_equal(env.inventory, info["inventory"])
        np.testing.assert_array_equal(env.mid, info["mid"])
    assert (env.step_count == 4).all() and env.terminated.all()
    assert (env.running_metric("quoted_qty") > 0).all()
    with pytest.raises(ValueError, match="quoted_qty"):
        env.running_metric("nothing")


@pytest.mark.slow
def test_fastlob_installs_beside_the_openai_agents_sdk(tmp_path):
    """A fresh venv (seeing this one's packages for the heavy dependencies) with fastlob built
    and installed from this checkout and ``openai-agents`` from the package index: both import,
    each under its own name, and fastlob's files include no top-level ``agents``."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")

    def pip(*args):
        return subprocess.run(
            [python, "-m", "pip", "install", "-q", *args],
            capture_output=True,
            text=True,
            timeout=900,
        )

    source = tmp_path / "source"  # a copy: pip builds in the tree it is given
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("fastlob", "agents"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = pip("--no-deps", str(source))
    assert built.returncode == 0, built.stderr[-2000:]
    sdk = pip("openai-agents")
    if sdk.returncode != 0:
        pytest.skip(f"openai-agents could not be installed from the index: {sdk.stderr[-300:]}")
    code = (
        "import agents, fastlob, fastlob_agents, fastlob_agents.ppo\n"
        "print(agents.__file__); print(fastlob_agents.__file__)\n"
        "assert hasattr(agents, 'Agent') and hasattr(agents, 'Runner')\n"
        "from fastlob import OrderBook; from fastlob_agents.ppo import PPOConfig\n"
    )
    proc = subprocess.run([python, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    agents_file, ours_file = proc.stdout.split()
    assert agents_file.startswith(site) and ours_file.startswith(site)
    record = next(Path(site).glob("fastlob-*.dist-info")) / "RECORD"
    tops = {line.split("/")[0] for line in record.read_text().splitlines()}
    assert "agents" not in tops and {"fastlob", "fastlob_agents"} <= tops
