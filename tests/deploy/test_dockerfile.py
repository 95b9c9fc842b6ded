"""deploy/docker/Dockerfile and .dockerignore: the layer order, the targets, the build context.

No Docker engine runs here, so the image is never built: the Dockerfile is read instruction
by instruction, its requirements step is run on its own, and the build context is computed
by docker-py's .dockerignore matcher (what docker-compose 1.29 sends), which the Debian
docker-compose package brings along.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib

import pytest

from tests.deploy.helpers import DEPLOY, REPO

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
TARGETS = ("cpu", "cuda")


def stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its (INSTRUCTION, arguments), comments dropped and lines joined."""
    text = re.sub(r"\\\n", "", DOCKERFILE.read_text())
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction == "FROM":
            current = result.setdefault(args.split(" AS ")[1], [])
        current.append((instruction, args.strip()))
    return result


def index(stage, instruction: str, pattern: str) -> int:
    """Where the first instruction whose arguments match pattern is in the stage."""
    for i, (name, args) in enumerate(stage):
        if name == instruction and re.search(pattern, args):
            return i
    raise AssertionError(f"no {instruction} matching {pattern!r}")


def test_cpu_is_the_default_target_and_cuda_the_other():
    assert list(stages()) == ["base", "requirements", "cuda", "cpu"]


def test_each_target_installs_torch_then_the_dependencies_then_the_code():
    torch_pin = next(
        dep for dep in pyproject()["project"]["dependencies"] if dep.startswith("torch")
    )
    for name in TARGETS:
        stage = stages()[name]
        torch = index(stage, "RUN", r"^pip install .*torch==")
        assert torch_pin in stage[torch][1], name
        requirements = index(stage, "COPY", r"--from=requirements")
        install = index(stage, "RUN", r"pip install -r /tmp/requirements.txt")
        code = index(stage, "COPY", r"^\. /app$")
        assert torch < requirements < install < code, name
    assert "--index-url https://download.pytorch.org/whl/cpu" in stages()["cpu"][1][1]
    assert "--index-url" not in stages()["cuda"][1][1]  # PyPI's wheel is the CUDA one


def test_the_two_targets_differ_only_in_torch_and_command():
    cpu, cuda = stages()["cpu"], stages()["cuda"]
    assert (cpu[0], cuda[0]) == (("FROM", "base AS cpu"), ("FROM", "base AS cuda"))
    # [1] installs torch, [-1] is the CMD: everything between is the same.
    assert cpu[2:-1] == cuda[2:-1]


def test_the_image_runs_as_a_numeric_non_root_user():
    base = stages()["base"]
    assert "--uid 10001" in base[index(base, "RUN", r"useradd")][1]
    for name in TARGETS:
        stage = stages()[name]
        user = index(stage, "USER", r".")
        assert stage[user][1] == "10001:10001"
        assert user > index(stage, "RUN", "collectstatic")  # root only while building
        assert stage[-1][0] == "CMD"


def test_collectstatic_runs_at_build_time_without_starting_redis():
    for name in TARGETS:
        stage = stages()[name]
        run = stage[index(stage, "RUN", "collectstatic")][1]
        assert run.startswith("REDIS_URL=redis://") and "--noinput" in run


def test_the_base_python_is_the_one_the_project_requires():
    assert pyproject()["project"]["requires-python"] == ">=3.11,<3.12"
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert default and default[1].startswith("python:3.11-slim")
    for name in ("base", "requirements"):
        assert stages()[name][0][1].startswith("${PYTHON_IMAGE} AS ")


def test_the_requirements_step_lists_the_project_dependencies(tmp_path):
    stage = stages()["requirements"]
    command = stage[index(stage, "RUN", "tomllib")][1]
    command = command.replace("/tmp/pyproject.toml", str(REPO / "pyproject.toml"))
    command = command.replace("/requirements.txt", str(tmp_path / "requirements.txt"))
    python_dir = str(REPO / ".venv" / "bin")
    subprocess.run(["sh", "-c", f'PATH="{python_dir}:$PATH"; {command}'], check=True)
    listed = (tmp_path / "requirements.txt").read_text().split("\n")
    assert [line for line in listed if line] == pyproject()["project"]["dependencies"]


@pytest.fixture(scope="module")
def context():
    """docker-py's view of the build context: its files, and whether some paths match."""
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose (docker-py)")
    interpreter = open(compose).readline().removeprefix("#!").strip()
    probes = [
        "deploy/.env",
        "deploy/.env.example",
        "var/reverie.sqlite3",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "bench/players.py",
        "webapp/__pycache__/settings.cpython-311.pyc",
        "deploy/k8s/base/kustomization.yaml",
    ]
    script = (
        "import json, sys\n"
        "from docker.utils.build import PatternMatcher, exclude_paths\n"
        "patterns = [l.strip() for l in open('.dockerignore') if l.strip()"
        " and not l.startswith('#')]\n"
        "print(json.dumps({'files': sorted(exclude_paths('.', patterns)),"
        " 'excluded': {p: PatternMatcher(patterns).matches(p) for p in sys.argv[1:]}}))\n"
    )
    done = subprocess.run(
        [interpreter, "-c", script, *probes],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_the_context_holds_the_code_models_and_deploy(context):
    files = set(context["files"])
    for path in (
        "manage.py",
        "pyproject.toml",
        "webapp/settings.py",
        "inference/engine.py",
        "streaming/peer.py",
        "frontend/templates",
        "models/crafter-small.safetensors",
        "models/worlds/index.json",
        "deploy/gunicorn.conf.py",
        "deploy/docker/migrate.sh",
    ):
        assert path in files, path


def test_the_context_leaves_out_secrets_state_and_caches(context):
    assert context["excluded"] == {
        "deploy/.env": True,
        "deploy/.env.example": False,
        "var/reverie.sqlite3": True,
        ".venv/bin/python": True,
        ".git/HEAD": True,
        "tests/conftest.py": True,
        "bench/players.py": True,
        "webapp/__pycache__/settings.cpython-311.pyc": True,
        "deploy/k8s/base/kustomization.yaml": True,
    }
    assert not [path for path in context["files"] if "__pycache__" in path]


def test_every_copied_path_is_in_the_context(context):
    files = set(context["files"])
    for name in TARGETS:
        for instruction, args in stages()[name]:
            if instruction == "COPY" and not args.startswith("--from"):
                source = args.split()[0]
                assert source == "." or source in files, source
    assert "pyproject.toml" in files  # the requirements stage's COPY


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())
