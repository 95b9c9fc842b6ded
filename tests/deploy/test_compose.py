"""deploy/docker/compose*.yml, checked by a real Compose parser: `docker-compose config`.

The parser is Debian's docker-compose (1.29, `apt-get install docker-compose`): `config`
validates against the Compose schema and resolves anchors, overrides and the env file without
a Docker engine. No engine runs here, so nothing is started.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, FOREIGN_VARIABLES, env_example

APP_SERVICES = ("web", "control", "beat", "gpu")
DRAIN_SECONDS = 300  # WORKER_DRAIN_SECONDS' default


@pytest.fixture
def compose(tmp_path):
    """Run `docker-compose config` on a copy of deploy/ whose env file is the example."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose (Compose parser)")
    (tmp_path / "deploy" / "docker").mkdir(parents=True)
    for path in (DEPLOY / "docker").glob("compose*.yml"):
        shutil.copy(path, tmp_path / "deploy" / "docker" / path.name)
    shutil.copy(DEPLOY / ".env.example", tmp_path / "deploy" / ".env")

    def run(*files: str, profile: str | None = None, check: bool = True):
        args = [binary]
        for name in files or ("compose.yml",):
            args += ["-f", f"deploy/docker/{name}"]
        if profile:
            args += ["--profile", profile]
        # A clean environment: no COMPOSE_* or variables of this shell reach the parser.
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        done = subprocess.run(
            [*args, "config"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        if check:
            assert done.returncode == 0, done.stderr
            return yaml.safe_load(done.stdout)
        return done

    run.dir = tmp_path / "deploy" / "docker"
    return run


def test_the_stack_passes_the_compose_parser(compose):
    services = compose()["services"]
    assert set(services) == {"db", "redis", "migrate", "turn", *APP_SERVICES}


def test_the_cuda_override_and_turn_profile_pass_the_parser(compose):
    services = compose("compose.yml", "compose.cuda.yml", profile="turn")["services"]
    assert services["gpu"]["image"] == "reverie:cuda"


def test_the_parser_rejects_a_misspelt_key(compose):
    good = (compose.dir / "compose.yml").read_text()
    assert "    stop_grace_period: 330s\n" in good
    bad = good.replace("    stop_grace_period: 330s\n", "    stop_grace_periods: 330s\n")
    (compose.dir / "compose.yml").write_text(bad)
    done = compose(check=False)
    assert done.returncode != 0
    assert "stop_grace_periods" in done.stderr


def test_the_parser_rejects_a_dependency_on_no_service(compose):
    good = (compose.dir / "compose.yml").read_text()
    bad = good.replace("migrate: { condition:", "migrat: { condition:", 1)
    assert bad != good
    (compose.dir / "compose.yml").write_text(bad)
    assert compose(check=False).returncode != 0


def test_app_services_start_only_after_migrate_succeeded(compose):
    services = compose("compose.yml", "compose.cuda.yml")["services"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["sh", "deploy/docker/migrate.sh"]


def test_every_long_running_service_has_a_healthcheck(compose):
    services = compose(profile="turn")["services"]
    for name in ("db", "redis", "web", "control", "gpu", "turn"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "9100/healthz" in " ".join(services["gpu"]["healthcheck"]["test"])


def test_the_worker_is_given_longer_than_its_drain(compose):
    gpu = compose()["services"]["gpu"]
    assert gpu["environment"]["WORKER_METRICS_PORT"] == "9100"
    grace = gpu["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > DRAIN_SECONDS


def test_the_cuda_worker_runs_the_cuda_image_on_one_reserved_gpu(compose):
    gpu = compose("compose.yml", "compose.cuda.yml")["services"]["gpu"]
    assert gpu["build"]["target"] == "cuda"
    assert gpu["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["device_ids"] == ["0"]
    # The rest of the stack stays on the CPU image.
    assert compose("compose.yml", "compose.cuda.yml")["services"]["web"]["build"]["target"] == "cpu"


def test_turn_takes_its_secret_from_the_env_file_at_start(compose):
    turn = compose(profile="turn")["services"]["turn"]
    assert turn["network_mode"] == "host"
    # `config` prints a literal $ escaped as $$: the container's shell expands it.
    assert '--static-auth-secret="$$TURN_SECRET"' in turn["entrypoint"][-1]
    assert any(v.endswith(":/etc/coturn/turnserver.conf:ro") for v in turn["volumes"])
    assert turn["profiles"] == ["turn"]  # `up` starts it only with --profile turn


def test_compose_sets_only_documented_variables(compose):
    documented = set(env_example()) | FOREIGN_VARIABLES
    services = compose("compose.yml", "compose.cuda.yml", profile="turn")["services"]
    for name, service in services.items():
        if name != "db":  # PostgreSQL's own image variables
            assert set(service.get("environment", {})) <= documented, name


def test_the_env_file_reads_the_same_in_compose_and_a_shell(compose):
    from_compose = compose()["services"]["beat"]["environment"]
    script = 'set -a; . "$1"; set +a; env -0'
    done = subprocess.run(
        ["sh", "-c", script, "sh", str(DEPLOY / ".env.example")],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    )
    from_shell = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
    for key in env_example():
        assert from_shell[key] == str(from_compose[key]), key
