"""deploy/k8s: the base and each overlay as kustomize builds them, checked against Kubernetes'
own API schemas (kubernetes-validate, strict: an unknown field fails) for a pinned version.

kustomize is the one built into kubectl (`kubectl kustomize`), which this machine image ships.
Nothing here talks to a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.deploy.helpers import DEPLOY, FOREIGN_VARIABLES, env_example

KUBERNETES_VERSION = "1.32.0"
K8S = DEPLOY / "k8s"
BUILDS = ("base", "overlays/cpu", "overlays/gpu")
DRAIN_SECONDS = 300  # WORKER_DRAIN_SECONDS' default


def kustomize(path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl not found: its built-in kustomize builds deploy/k8s")
    done = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    return {name: kustomize(K8S / name) for name in BUILDS}


def find(resources, kind: str, name: str) -> dict:
    (match,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return match


def pod_specs(resources):
    for resource in resources:
        if resource["kind"] in ("Deployment", "Job"):
            yield resource["metadata"]["name"], resource["spec"]["template"]["spec"]


def container(resources, name: str) -> dict:
    (first,) = find(resources, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return first


def example_secret() -> dict:
    return yaml.safe_load((K8S / "secret.example.yaml").read_text())


@pytest.mark.parametrize("build", BUILDS)
def test_every_resource_passes_the_kubernetes_schema(built, build):
    kinds = set()
    for resource in built[build]:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        kinds.add(resource["kind"])
    assert kinds == {
        "Namespace",
        "ConfigMap",
        "Service",
        "Deployment",
        "Job",
        "HorizontalPodAutoscaler",
    }
    assert all(r["metadata"].get("namespace", "reverie") == "reverie" for r in built[build])


def test_the_example_secret_passes_the_kubernetes_schema():
    kubernetes_validate.validate(example_secret(), KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_in_an_overlay_fails_the_schema(tmp_path):
    # An overlay of our own over the gpu overlay, patching in a field Kubernetes lacks.
    # (kustomize takes a base only by a relative path)
    base = os.path.relpath(K8S / "overlays" / "gpu", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{base}]\npatches: [{{path: typo.yaml}}]\n"
    )
    (tmp_path / "typo.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\n"
        "spec: {template: {spec: {terminationGracePeriodSecond: 330}}}\n"
    )
    worker = find(kustomize(tmp_path), "Deployment", "worker")
    with pytest.raises(kubernetes_validate.ValidationError, match="terminationGracePeriodSecond"):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_a_wrong_type_fails_the_schema(built):
    web = find(built["overlays/cpu"], "Deployment", "web")
    web["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlays_name_a_registry_image_for_every_container(built, overlay):
    worker_tag = "cuda" if overlay == "gpu" else "cpu"
    for name, spec in pod_specs(built[f"overlays/{overlay}"]):
        for each in spec["containers"]:
            image = each["image"]
            if name == "coturn":
                assert image.startswith("coturn/coturn:")
            elif name == "worker":
                assert image == f"registry.example.com/reverie:{worker_tag}"
            else:
                assert image == "registry.example.com/reverie:cpu", name


def test_gpu_workers_take_one_gpu_each_and_see_it_as_device_0(built):
    worker = container(built["overlays/gpu"], "worker")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "CUDA_VISIBLE_DEVICES", "value": "0"} in worker["env"]
    pod = find(built["overlays/gpu"], "Deployment", "worker")["spec"]["template"]["spec"]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "nvidia.com/gpu" not in container(built["overlays/cpu"], "worker")["resources"]["limits"]


@pytest.mark.parametrize("build", BUILDS)
def test_workers_drain_within_their_grace_and_roll_one_at_a_time(built, build):
    deployment = find(built[build], "Deployment", "worker")
    env = {e["name"]: e["value"] for e in container(built[build], "worker")["env"]}
    assert int(env["WORKER_DRAIN_SECONDS"]) == DRAIN_SECONDS
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > DRAIN_SECONDS
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert env["WORKER_METRICS_PORT"] == "9100" and env["WEBRTC_ICE_POLICY"] == "relay"


def test_probes_ask_readyz_for_readiness_and_healthz_for_liveness(built):
    resources = built["overlays/gpu"]
    for name, port in (("web", 8000), ("worker", 9100)):
        each = container(resources, name)
        ports = {p["name"]: p["containerPort"] for p in each["ports"]}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            assert each[probe]["httpGet"]["path"] == path, name
            assert ports[each[probe]["httpGet"]["port"]] == port, name
        annotations = find(resources, "Deployment", name)["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }
    ping = container(resources, "control")["livenessProbe"]["exec"]["command"]
    assert "celery@$HOSTNAME" in ping[-1]


def test_web_has_a_service_and_an_autoscaler(built):
    resources = built["overlays/cpu"]
    web = find(resources, "Deployment", "web")
    service = find(resources, "Service", "web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    hpa = find(resources, "HorizontalPodAutoscaler", "web")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert hpa["spec"]["minReplicas"] >= 2


def test_there_is_one_beat_replaced_by_recreate(built):
    beat = find(built["overlays/gpu"], "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def test_the_migrate_job_runs_the_retrying_script_once(built):
    job = find(built["overlays/gpu"], "Job", "migrate")
    (each,) = job["spec"]["template"]["spec"]["containers"]
    assert each["command"] == ["sh", "deploy/docker/migrate.sh"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_pods_read_the_generated_config_and_the_documented_secret(built):
    resources = built["overlays/gpu"]
    config_names = {r["metadata"]["name"] for r in resources if r["kind"] == "ConfigMap"}
    secret = example_secret()
    for name, spec in pod_specs(resources):
        for each in spec["containers"]:
            for source in each.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_names, name
                else:
                    assert source["secretRef"]["name"] == secret["metadata"]["name"], name
    coturn_env = container(resources, "coturn")["env"][0]["valueFrom"]["secretKeyRef"]
    assert coturn_env["name"] == secret["metadata"]["name"]
    assert coturn_env["key"] in secret["stringData"]


def test_every_variable_set_for_a_pod_is_documented(built):
    documented = set(env_example()) | FOREIGN_VARIABLES
    resources = built["overlays/gpu"]
    (config,) = [r for r in resources if r["kind"] == "ConfigMap"]
    assert set(config["data"]) <= documented
    assert set(example_secret()["stringData"]) <= documented
    for name, spec in pod_specs(resources):
        if name != "coturn":
            for each in spec["containers"]:
                assert {e["name"] for e in each.get("env", [])} <= documented, name


def test_pods_run_as_non_root(built):
    for name, spec in pod_specs(built["overlays/gpu"]):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        for each in spec["containers"]:
            assert each["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_coturn_gets_the_options_of_deploy_turn_as_flags(built):
    # kustomize reads no file outside deploy/k8s, so coturn.yaml repeats turnserver.conf.
    conf = [line.strip() for line in (DEPLOY / "turn" / "turnserver.conf").open()]
    options = {f"--{line}" for line in conf if line and not line.startswith("#")}
    assert not [option for option in options if option.startswith("--static-auth-secret")]
    coturn = container(built["overlays/gpu"], "coturn")
    assert coturn["command"] == ["turnserver"]
    args = set(coturn["args"])
    own = {"-n", "--log-file=stdout", "--static-auth-secret=$(TURN_SECRET)"}
    assert own <= args
    assert args - own == options, "deploy/k8s/base/coturn.yaml and deploy/turn/turnserver.conf"
