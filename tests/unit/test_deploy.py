"""deploy/: the image recipe and the FlinkDeployment manifests name real things of this repository.

No container engine runs here, so the manifests are parsed and checked: entry points that exist, config keys
the packaged configuration has, the jar paths the image builds, and an image recipe that installs with the
very command developers and CI run (`make setup`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyhocon import ConfigFactory

from cokreat_jobs.core.config import load_config
from cokreat_jobs.jobs import JOB_MODULES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
JOBS = tuple(JOB_MODULES)
IMAGE_ROOT = "/opt/cokreat"  # the Dockerfile's WORKDIR, where the checkout is copied


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def manifests(job: str) -> dict[str, Any]:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / f"{job}.yaml").read_text()))
    return {d["kind"]: d for d in docs if d}


def in_repo(image_path: str) -> Path:
    assert image_path.startswith(IMAGE_ROOT + "/"), image_path
    return ROOT / image_path[len(IMAGE_ROOT) + 1 :]


def flat_keys(tree: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, v in tree.items():
        if isinstance(v, dict):
            keys |= flat_keys(v, f"{prefix}{k}.")
        else:
            keys.add(f"{prefix}{k}")
    return keys


def test_dockerfile_installs_with_make_setup_and_copies_what_it_needs() -> None:
    text = dockerfile()
    assert re.search(r"^FROM flink:2\.2\.\d+-java17", text, re.M)
    assert re.search(rf"^WORKDIR {IMAGE_ROOT}$", text, re.M)
    runs = " ".join(re.findall(r"^RUN (.+?)(?<!\\)$", text.replace("\\\n", " "), re.M | re.S))
    # one source of truth: the image runs the Makefile's setup target, and no pip/mvn line of its own
    assert "make setup" in runs
    assert "pip install" not in runs and "mvn " not in runs
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^setup:", makefile, re.M)
    py = re.search(r"^PY\s*\?=\s*(\S+)", makefile, re.M)
    assert py and py.group(1) in text, "the image installs the Python the Makefile uses"
    # everything `make setup` reads is copied in
    copied = " ".join(re.findall(r"^COPY (.+)$", text, re.M))
    for needed in ("pyproject.toml", "pom.xml", "Makefile", "src/"):
        assert needed in copied
        assert (ROOT / needed.rstrip("/")).exists()


@pytest.mark.parametrize("job", JOBS)
def test_flink_deployment_names_real_entry_points_and_jars(job: str) -> None:
    m = manifests(job)
    deployment = m["FlinkDeployment"]
    spec = deployment["spec"]
    assert deployment["apiVersion"] == "flink.apache.org/v1beta1"
    assert spec["flinkVersion"] == "v2_2"
    args = spec["job"]["args"]
    # the Python entry point is the job's own file in the repository
    entry = args[args.index("-py") + 1]
    module_file = ROOT / "src" / (JOB_MODULES[job].replace(".", "/") + ".py")
    assert in_repo(entry) == module_file and module_file.is_file()
    # its interpreter is the venv `make setup` creates
    python = args[args.index("-pyclientexec") + 1]
    assert python == f"{IMAGE_ROOT}/.venv/bin/python"
    assert spec["flinkConfiguration"]["python.executable"] == python
    # the Flink Python driver of the base image's version
    assert spec["job"]["jarURI"] == "local:///opt/flink/opt/flink-python-2.2.1.jar"
    assert spec["job"]["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert spec["job"]["upgradeMode"] == "savepoint"
    # the jars the image builds: jars/<profile>/ from pom.xml, found through COKREAT_JARS_DIR
    env = {e["name"]: e for e in spec["podTemplate"]["spec"]["containers"][0]["env"]}
    jars_dir = env["COKREAT_JARS_DIR"]["value"]
    assert jars_dir == f"{IMAGE_ROOT}/jars" and in_repo(jars_dir) == ROOT / "jars"
    pom = ET.parse(ROOT / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    profiles = [p.findtext("m:id", namespaces=ns) for p in pom.findall(".//m:profile", ns)]
    assert "flink" in profiles, "the jobs' jars come from the pom's flink profile (jars/flink/)"
    assert "-Pflink" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize("job", JOBS)
def test_config_map_is_hocon_with_the_packaged_keys(job: str) -> None:
    m = manifests(job)
    spec = m["FlinkDeployment"]["spec"]
    args = spec["job"]["args"]
    config_path = args[args.index("--config") + 1]
    # mounted from the ConfigMap, whose key is the file's name
    mount = spec["podTemplate"]["spec"]["containers"][0]["volumeMounts"][0]
    volume = spec["podTemplate"]["spec"]["volumes"][0]
    assert config_path.startswith(mount["mountPath"] + "/")
    assert volume["configMap"]["name"] == m["ConfigMap"]["metadata"]["name"]
    text = m["ConfigMap"]["data"][Path(config_path).name]
    packaged = flat_keys(load_config(job).as_dict())
    given = flat_keys(ConfigFactory.parse_string(text, resolve=False))
    # every key is one the job reads (the Scala keys, or ours from base.conf), except per-service protection
    # blocks, which may name any service
    # metrics.prometheus.port is read by flink/pipeline.py and off (absent) by default
    ours = {"metrics.prometheus.port"}
    unknown = {k for k in given if k not in packaged | ours and not k.startswith("http.services.")}
    assert not unknown, unknown
    # and the file loads as the job's --config
    cfg_file = Path(__file__).parent / f".deploy-{job}.conf"
    try:
        cfg_file.write_text(text)
        cfg = load_config(job, config_file=str(cfg_file))
    finally:
        cfg_file.unlink(missing_ok=True)
    assert cfg.get_str("job.env") == "prod"
    assert cfg.get_str("kafka.input.topic").startswith("prod.")
    assert str(cfg.get("metrics.prometheus.port")) == "9249"


@pytest.mark.parametrize("job", JOBS)
def test_secrets_state_and_metrics(job: str) -> None:
    spec = manifests(job)["FlinkDeployment"]["spec"]
    conf = spec["flinkConfiguration"]
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
        assert re.match(r"^(s3|gs|abfss|wasbs|oss)://", conf[key]), (key, conf[key])
    assert conf["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    annotations = spec["podTemplate"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(conf["metrics.reporter.prom.port"])
    env = spec["podTemplate"]["spec"]["containers"][0]["env"]
    packaged = flat_keys(load_config(job).as_dict())
    for e in env:
        if not e["name"].startswith("COKREAT__"):
            continue
        # secrets come from a Secret, never inline
        assert "secretKeyRef" in e["valueFrom"] and "value" not in e
        # and the variable names a key the job has (env rule of core/config.py: __ between segments)
        segments = e["name"][len("COKREAT__") :].lower().split("__")
        pattern = r"\.".join(re.escape(s).replace("_", "[_-]") for s in segments)
        assert any(re.fullmatch(pattern, k, re.I) for k in packaged), e["name"]
    secret_names = {e["name"] for e in env if e["name"].startswith("COKREAT__")}
    if job == "content-auto-creator":
        assert "COKREAT__CONTENT_AUTO_CREATOR__G_SERVICE_ACCT_CRED" in secret_names
    if job != "user-delete":
        assert "COKREAT__CLOUD_STORAGE_SECRET" in secret_names


def test_every_job_has_a_manifest() -> None:
    assert {p.stem for p in (DEPLOY / "k8s").glob("*.yaml")} >= set(JOBS)
