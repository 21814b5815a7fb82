"""The deployment files, checked with real tools and without a Docker engine.

- deploy/docker-compose.yaml: Debian's docker-compose (v1) parses and resolves it.
- deploy/k8s/: kubernetes-validate checks every object against Kubernetes' schemas
  (strict: an unknown field fails).
- deploy/Dockerfile: dockerfile-parse reads its stages; their package lists are held to
  ./dev and to the libraries the built binary links.
- .devcontainer/devcontainer.json and .dockerignore.

Every ChatOrbit service in compose and Kubernetes is held to the binary: each variable
it sets is one `chatorbit --help` lists, each role is one it runs, each value one it
parses (`--help` parses the whole environment first, and exits 2 on a bad value). Then
both topologies start for real on loopback, each service a chatorbit process with the
environment the file gives it (addresses mapped to loopback, Redis and FerretDB standing
in for Redis and MongoDB), and a client registers, logs in and chats through the gateway.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import kubernetes_validate
import pytest
import requests
import yaml
from dockerfile_parse import DockerfileParser
from websockets.sync.client import connect

from conftest import BINARY, ROOT, SANITIZED, Server, test_servers, wait_until

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yaml"
K8S_DIR = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
KUBERNETES_VERSION = "1.30.0"
COMPOSE_SECRET = "deploy-test-secret-0123456789abcdef0123456789"
TIMEOUT = 30.0 if SANITIZED else 10.0
# The original's host ports (the seed README and ../shared/CONTRACT.md) and the gateway's.
ORIGINAL_HOST_PORTS = {"chat1": 8088, "auth": 8089, "user": 8087, "mongo-express": 8091, "mongo": 27019,
                       "redis": 6381, "gateway": 8080}
# A stopping chat node: drain for at least 10 s (more with many viewers), then up to 10 s
# for requests in flight (App::shutdown). A grace period must cover both.
SHUTDOWN_FLOOR_SECONDS = 20
# ./dev's APT_PACKAGES that a release build of chatorbit does not need: the Dockerfile's
# build stage must install every other one.
DEV_ONLY_APT = {"ccache", "git", "clang-format", "clang", "libclang-rt-14-dev", "python3-venv", "redis-server",
                "redis-tools", "docker-compose"}


# --- what the binary accepts ---------------------------------------------------------


@lru_cache(maxsize=1)
def help_text() -> str:
    return subprocess.run([str(BINARY), "--help"], env=base_env(), capture_output=True, text=True,
                          check=True, timeout=30).stdout


def base_env() -> dict[str, str]:
    """What a container starts with, less the image's own settings."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()}


def known_settings() -> set[str]:
    """The variables `chatorbit --help` lists: `  --flag  (NAME, default: ...)`."""
    names = set(re.findall(r"^  --[a-z0-9-]+  \(([A-Z][A-Z0-9_]*), default: ", help_text(), re.M))
    assert "CHATORBIT_ROLE" in names and "PORT" in names, "cannot read the settings from --help"
    return names


def known_roles() -> set[str]:
    match = re.search(r"all, or a comma list of ([a-z,]+)", help_text())
    assert match, "cannot read the roles from --help"
    return {"all", *match.group(1).split(",")}


def setting_problems(where: str, env: dict[str, str]) -> list[str]:
    """Names --help does not list, and roles the binary does not run."""
    known = known_settings()
    problems = [f"{where}: {name} is not a chatorbit setting (see chatorbit --help)"
                for name in sorted(env) if name not in known]
    roles = [r.strip() for r in str(env.get("CHATORBIT_ROLE", "all")).split(",")]
    problems += [f"{where}: CHATORBIT_ROLE names an unknown role '{r}'" for r in roles if r not in known_roles()]
    return problems


def parse_problem(where: str, env: dict[str, str]) -> str | None:
    """The binary's own verdict on the values: it parses every setting before --help."""
    proc = subprocess.run([str(BINARY), "--help"], env={**base_env(), **env}, capture_output=True, text=True,
                          timeout=30)
    return None if proc.returncode == 0 else f"{where}: exit {proc.returncode}: {proc.stderr.strip()}"


def test_name_check_catches_a_misspelt_setting(binary):
    assert setting_problems("x", {"CHATORBIT_ROLE": "chat", "CHATORBIT_DRAIN_RATES": "10"}) == [
        "x: CHATORBIT_DRAIN_RATES is not a chatorbit setting (see chatorbit --help)"]
    assert setting_problems("x", {"CHATORBIT_ROLE": "chat,gatway"}) == [
        "x: CHATORBIT_ROLE names an unknown role 'gatway'"]


def test_value_check_catches_a_bad_value(binary):
    assert parse_problem("x", {"CHATORBIT_ROLE": "chat", "PORT": "8088"}) is None
    problem = parse_problem("x", {"CHATORBIT_ROLE": "chat", "PORT": "eighty"})
    assert problem and "exit 2" in problem and "PORT" in problem


# --- docker-compose ---------------------------------------------------------------------


def docker_compose(*args: str, secret: str | None = COMPOSE_SECRET) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if not exe:
        pytest.fail("docker-compose is missing: run ./dev setup (apt package docker-compose)")
    env = {**base_env(), **({"JWT_SECRET": secret} if secret is not None else {})}
    return subprocess.run([exe, "-f", str(COMPOSE_FILE), *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def compose() -> dict:
    """The file as docker-compose resolves it: anchors merged, variables filled in."""
    proc = docker_compose("config")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def chatorbit_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items()
            if str((s.get("build") or {}).get("dockerfile", "")).endswith("deploy/Dockerfile")}


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_compose_file_is_valid_for_docker_compose():
    proc = docker_compose("config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_refuses_to_start_without_a_jwt_secret():
    proc = docker_compose("config", "-q", secret=None)
    assert proc.returncode != 0 and "JWT_SECRET" in proc.stderr


def test_compose_runs_every_role_from_the_dockerfile(compose):
    services = chatorbit_services(compose)
    assert set(services) == {"auth", "user", "chat1", "chat2", "gateway"}
    for name, s in services.items():
        assert Path(s["build"]["context"]).resolve() == ROOT, name
        assert not s.get("command") and not s.get("entrypoint"), f"{name}: settings go in environment"
    roles = {name: service_env(s)["CHATORBIT_ROLE"] for name, s in services.items()}
    assert roles == {"auth": "auth", "user": "user", "chat1": "chat", "chat2": "chat", "gateway": "gateway"}


def test_compose_settings_are_ones_the_binary_knows(compose, binary):
    problems = []
    for name, s in chatorbit_services(compose).items():
        problems += setting_problems(f"compose {name}", service_env(s))
    assert not problems, "\n".join(problems)


def test_compose_settings_parse(compose, binary):
    problems = [p for name, s in chatorbit_services(compose).items()
                if (p := parse_problem(f"compose {name}", service_env(s)))]
    assert not problems, "\n".join(problems)


def test_compose_services_share_one_jwt_secret(compose):
    secrets = {name: service_env(s).get("JWT_SECRET") for name, s in chatorbit_services(compose).items()}
    assert set(secrets.values()) == {COMPOSE_SECRET}, secrets


def test_compose_services_have_health_checks_and_start_in_order(compose):
    services = compose["services"]
    problems = []
    for name, s in services.items():
        if not (s.get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no healthcheck")
        for dep, how in (s.get("depends_on") or {}).items():
            if (how or {}).get("condition") != "service_healthy":
                problems.append(f"{name}: depends on {dep} without condition service_healthy")
    for name, s in chatorbit_services(compose).items():
        env = service_env(s)
        probe = " ".join(s["healthcheck"]["test"])
        if not re.search(rf"127\.0\.0\.1:{env['PORT']}/(readyz|healthz)\b", probe):
            problems.append(f"{name}: healthcheck '{probe}' does not ask its own port's /readyz or /healthz")
        needs = {"redis"} if env["CHATORBIT_ROLE"] == "gateway" else {"redis", "mongo"}
        needs |= {urlsplit("//" + u.removeprefix("http://")).hostname
                  for key in ("CHATORBIT_AUTH_URL", "CHATORBIT_USER_URL") if key in env for u in [env[key]]}
        needs |= {u.split(":")[0] for u in env.get("CHATORBIT_CHAT_URLS", "").split(",") if u}
        direct = set(s.get("depends_on") or {})
        reached = set(direct)
        for d in direct:  # the gateway reaches Redis through the services it waits for
            reached |= set(services[d].get("depends_on") or {})
        if not needs <= reached:
            problems.append(f"{name}: starts before {sorted(needs - reached)}")
    assert not problems, "\n".join(problems)


def test_compose_publishes_the_original_host_ports(compose):
    published = {}
    for name, s in compose["services"].items():
        for p in s.get("ports") or []:
            host = p["published"] if isinstance(p, dict) else str(p).split("/")[0].split(":")[-2]
            published.setdefault(name, set()).add(int(host))
    for name, port in ORIGINAL_HOST_PORTS.items():
        assert port in published.get(name, set()), f"{name} should be on host port {port}: {published.get(name)}"


def test_compose_services_believe_only_the_gateway(compose):
    services = chatorbit_services(compose)
    gateway_ip = services["gateway"]["networks"]["backend"]["ipv4_address"]
    subnet = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(gateway_ip) in ipaddress.ip_network(subnet)
    for name, s in services.items():
        env = service_env(s)
        expected = None if env["CHATORBIT_ROLE"] == "gateway" else gateway_ip
        assert env.get("CHATORBIT_TRUSTED_PROXIES") == expected, name


def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"not a duration: {text}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_chat_nodes_have_time_to_drain(compose):
    for name, s in chatorbit_services(compose).items():
        if service_env(s)["CHATORBIT_ROLE"] == "chat":
            assert duration_seconds(s.get("stop_grace_period", "10s")) > SHUTDOWN_FLOOR_SECONDS, name


def test_compose_keeps_redis_and_mongo_data_on_volumes(compose):
    for name, path in (("redis", "/data"), ("mongo", "/data/db")):
        mounts = compose["services"][name].get("volumes") or []
        targets = {(m["source"], m["target"]) if isinstance(m, dict) else tuple(m.split(":")[:2]) for m in mounts}
        assert any(t == path and src in compose.get("volumes", {}) for src, t in targets), (name, mounts)


# --- Kubernetes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> list[tuple[str, dict]]:
    files = sorted(K8S_DIR.glob("*.yaml"))
    assert files, "no manifests in deploy/k8s"
    return [(f.name, doc) for f in files for doc in yaml.safe_load_all(f.read_text()) if doc]


def workloads(manifests) -> list[dict]:
    return [d for _, d in manifests if d["kind"] in ("Deployment", "StatefulSet")]


def chatorbit_containers(manifests):
    """(workload, container) for every container running the ChatOrbit image."""
    return [(w, c) for w in workloads(manifests) for c in w["spec"]["template"]["spec"]["containers"]
            if c["image"].split(":")[0].endswith("chatorbit")]


def k8s_env(manifests, container: dict) -> dict[str, str]:
    """The container's environment as the kubelet would give it (envFrom, then env)."""
    sources = {}
    for _, d in manifests:
        if d["kind"] == "ConfigMap":
            sources[("configMap", d["metadata"]["name"])] = dict(d.get("data") or {})
        elif d["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            sources[("secret", d["metadata"]["name"])] = {**data, **(d.get("stringData") or {})}
    env: dict[str, str] = {}
    for ref in container.get("envFrom") or []:
        kind, name = ("configMap", ref["configMapRef"]["name"]) if "configMapRef" in ref else \
            ("secret", ref["secretRef"]["name"])
        assert (kind, name) in sources, f"{container['name']}: envFrom names a missing {kind} {name}"
        env.update(sources[(kind, name)])
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        for key, kind in (("configMapKeyRef", "configMap"), ("secretKeyRef", "secret")):
            ref = (e.get("valueFrom") or {}).get(key)
            if ref:
                source = sources.get((kind, ref["name"]), {})
                assert ref["key"] in source, f"{container['name']}: {e['name']} names a missing key {ref}"
                env[e["name"]] = source[ref["key"]]
    return env


def test_k8s_manifests_match_the_schemas(manifests):
    problems = []
    for name, doc in manifests:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            where = ".".join(str(p) for p in getattr(e, "path", []))
            problems.append(f"{name} {doc.get('kind')}/{doc['metadata']['name']}: {where}: {getattr(e, 'message', e)}")
    assert not problems, "\n".join(problems)


def test_k8s_manifests_name_no_namespace(manifests):
    assert not [n for n, d in manifests if d["metadata"].get("namespace")], "apply them with kubectl -n"


def test_k8s_runs_every_role(manifests):
    roles = {w["metadata"]["name"]: k8s_env(manifests, c).get("CHATORBIT_ROLE")
             for w, c in chatorbit_containers(manifests)}
    assert roles == {"auth": "auth", "user": "user", "chat": "chat", "gateway": "gateway"}


def test_k8s_settings_are_ones_the_binary_knows(manifests, binary):
    problems = []
    for w, c in chatorbit_containers(manifests):
        problems += setting_problems(f"k8s {w['metadata']['name']}", k8s_env(manifests, c))
        if c.get("command") or c.get("args"):
            problems.append(f"k8s {w['metadata']['name']}: settings go in the environment, not command/args")
    assert not problems, "\n".join(problems)


def test_k8s_settings_parse(manifests, binary):
    problems = [p for w, c in chatorbit_containers(manifests)
                if (p := parse_problem(f"k8s {w['metadata']['name']}", k8s_env(manifests, c)))]
    assert not problems, "\n".join(problems)


def test_k8s_jwt_secret_comes_from_a_secret(manifests):
    secret_names = {d["metadata"]["name"] for _, d in manifests if d["kind"] == "Secret"}
    for w, c in chatorbit_containers(manifests):
        literal = [e for e in c.get("env") or [] if e["name"] == "JWT_SECRET" and "value" in e]
        refs = [r["secretRef"]["name"] for r in c.get("envFrom") or [] if "secretRef" in r]
        assert not literal and set(refs) & secret_names, w["metadata"]["name"]
        assert k8s_env(manifests, c).get("JWT_SECRET"), w["metadata"]["name"]
    for _, d in manifests:
        assert d["kind"] != "ConfigMap" or "JWT_SECRET" not in (d.get("data") or {}), d["metadata"]["name"]


def named_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)


def test_k8s_chatorbit_probes_ask_readyz_and_healthz_on_its_port(manifests):
    for w, c in chatorbit_containers(manifests):
        name = w["metadata"]["name"]
        port = int(k8s_env(manifests, c)["PORT"])
        assert port in {p["containerPort"] for p in c["ports"]}, f"{name}: PORT is not a containerPort"
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c[probe]["httpGet"]
            assert (get["path"], named_port(c, get["port"])) == (path, port), f"{name} {probe}"


def test_k8s_chat_nodes_drain_before_they_stop(manifests):
    (chat,) = [w for w, c in chatorbit_containers(manifests) if k8s_env(manifests, c)["CHATORBIT_ROLE"] == "chat"]
    spec = chat["spec"]["template"]["spec"]
    assert chat["spec"]["replicas"] >= 2
    (container,) = spec["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pause = float(command[1])
    assert spec["terminationGracePeriodSeconds"] > pause + SHUTDOWN_FLOOR_SECONDS


def test_k8s_every_container_has_requests_and_limits(manifests):
    for w in workloads(manifests):
        for c in w["spec"]["template"]["spec"]["containers"]:
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part) or {}), f"{w['metadata']['name']}/{c['name']} {part}"


def test_k8s_chatorbit_runs_as_non_root(manifests):
    for w, c in chatorbit_containers(manifests):
        pod = w["spec"]["template"]["spec"].get("securityContext") or {}
        assert pod.get("runAsNonRoot") is True and pod.get("runAsUser", 0) != 0, w["metadata"]["name"]


def service_targets(manifests) -> dict[str, tuple[dict, dict, int]]:
    """Every Service's `name:port` -> (workload, container, container port) it reaches."""
    out = {}
    for _, svc in manifests:
        if svc["kind"] != "Service":
            continue
        selector = svc["spec"]["selector"]
        chosen = [w for w in workloads(manifests)
                  if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(chosen) == 1, f"Service {svc['metadata']['name']} selects {len(chosen)} workloads"
        (w,) = chosen
        (c,) = w["spec"]["template"]["spec"]["containers"]
        for p in svc["spec"]["ports"]:
            target = named_port(c, p.get("targetPort", p["port"]))
            out[f"{svc['metadata']['name']}:{p['port']}"] = (w, c, target)
    return out


def pod_addresses(manifests) -> dict[str, tuple[dict, int]]:
    """Each address a client may use -> (workload, pod index): `service:port` for a
    Deployment, `pod.service:port` for each StatefulSet pod."""
    out = {}
    for address, (w, _, _) in service_targets(manifests).items():
        name, port = address.rsplit(":", 1)
        if w["kind"] == "StatefulSet" and w["spec"]["serviceName"] == name:
            for i in range(w["spec"]["replicas"]):
                out[f"{w['metadata']['name']}-{i}.{name}:{port}"] = (w, i)
        else:
            out[address] = (w, 0)
    return out


def test_k8s_services_reach_their_workloads(manifests):
    for address, (w, c, target) in service_targets(manifests).items():
        assert target in {p["containerPort"] for p in c.get("ports") or []}, address


def test_k8s_statefulsets_have_their_governing_services(manifests):
    services = {d["metadata"]["name"]: d for _, d in manifests if d["kind"] == "Service"}
    for w in workloads(manifests):
        if w["kind"] == "StatefulSet":
            svc = services.get(w["spec"]["serviceName"])
            assert svc and svc["spec"].get("clusterIP") == "None", w["metadata"]["name"]


def test_k8s_gateway_lists_every_chat_pod(manifests):
    (gateway,) = [c for w, c in chatorbit_containers(manifests) if w["metadata"]["name"] == "gateway"]
    env = k8s_env(manifests, gateway)
    listed = set(env["CHATORBIT_CHAT_URLS"].split(","))
    chat_pods = {a for a, (w, _) in pod_addresses(manifests).items() if w["metadata"]["name"] == "chat"}
    assert listed == chat_pods
    addresses = set(pod_addresses(manifests))
    for key in ("CHATORBIT_AUTH_URL", "CHATORBIT_USER_URL"):
        assert env[key].removeprefix("http://") in addresses, key


def test_k8s_stores_keep_their_data_on_volume_claims(manifests):
    for name, path in (("redis", "/data"), ("mongo", "/data/db")):
        (w,) = [w for w in workloads(manifests) if w["metadata"]["name"] == name]
        assert w["kind"] == "StatefulSet"
        claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates") or []}
        (c,) = w["spec"]["template"]["spec"]["containers"]
        assert any(m["name"] in claims and m["mountPath"] == path for m in c.get("volumeMounts") or []), name


# --- Dockerfile -------------------------------------------------------------------------


def dockerfile_stages() -> list[list[dict]]:
    stages: list[list[dict]] = []
    for instr in DockerfileParser(str(DOCKERFILE)).structure:
        if instr["instruction"] == "FROM":
            stages.append([])
        if stages and instr["instruction"] != "COMMENT":
            stages[-1].append(instr)
    return stages


def apt_installs(stage: list[dict]) -> set[str]:
    packages = set()
    for instr in stage:
        if instr["instruction"] != "RUN":
            continue
        for command in instr["value"].split("&&"):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                packages |= {w for w in words[words.index("install") + 1:] if not w.startswith("-")}
    return packages


def dev_variable(name: str) -> str:
    match = re.search(rf"^{name}=(\(.*?\)|\S+)", (ROOT / "dev").read_text(), re.M | re.S)
    assert match, f"no {name} in ./dev"
    return match.group(1)


def test_dockerfile_is_multi_stage_on_debian_12():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0]["value"].split()[0]
        assert re.fullmatch(r"debian:(12|bookworm)([.-][a-z0-9.-]+)?", image), image


def test_dockerfile_runs_as_non_root():
    users = [i["value"].split(":")[0] for i in dockerfile_stages()[-1] if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_dockerfile_checks_health_on_healthz():
    checks = [i["value"] for i in dockerfile_stages()[-1] if i["instruction"] == "HEALTHCHECK"]
    assert checks and "/healthz" in checks[-1] and "CMD" in checks[-1]


def test_dockerfile_exposes_the_port_and_runs_chatorbit(binary):
    final = dockerfile_stages()[-1]
    exposed = {p.split("/")[0] for i in final if i["instruction"] == "EXPOSE" for p in i["value"].split()}
    default_port = re.search(r"--port  \(PORT, default: (\d+)\)", help_text()).group(1)
    assert default_port in exposed
    (entry,) = [json.loads(i["value"]) for i in final if i["instruction"] == "ENTRYPOINT"]
    assert Path(entry[0]).name == "chatorbit"


def test_dockerfile_build_stage_installs_what_a_release_build_needs():
    dev = set(dev_variable("APT_PACKAGES").strip("()").split())
    missing = (dev - DEV_ONLY_APT) - apt_installs(dockerfile_stages()[0])
    assert not missing, f"./dev installs {sorted(missing)}: add them to the build stage, or to DEV_ONLY_APT here"


def test_dockerfile_swagger_ui_is_the_version_dev_installs():
    args = [i["value"] for i in dockerfile_stages()[0] if i["instruction"] == "ARG"]
    assert f"SWAGGER_UI_VERSION={dev_variable('SWAGGER_UI_VERSION')}" in args


def test_dockerfile_settings_are_ones_the_binary_knows(binary):
    final = dockerfile_stages()[-1]
    env = {}
    for i in final:
        if i["instruction"] == "ENV":
            env.update(dict(w.split("=", 1) for w in shlex.split(i["value"])))
    assert not setting_problems("Dockerfile", env)
    copied = {i["value"].split()[-1] for i in final if i["instruction"] == "COPY"}
    assert env["CHATORBIT_SWAGGER_UI_DIR"] in copied, "Swagger UI must be copied where the setting points"


def library_package(path: str) -> str:
    real = os.path.realpath(path)
    candidates = {path, real} | {p.replace("/usr/lib/", "/lib/", 1) for p in (path, real)} | \
                 {p.replace("/lib/", "/usr/lib/", 1) for p in (path, real) if p.startswith("/lib/")}
    for candidate in sorted(candidates):
        proc = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.split(":")[0].strip()
    raise AssertionError(f"no Debian package owns {path}")


@pytest.mark.skipif(SANITIZED, reason="the image carries the release build")
def test_dockerfile_runtime_stage_installs_every_library_the_binary_links(binary):
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        pytest.skip("needs readelf and dpkg")
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", subprocess.run(["readelf", "-d", str(binary)], capture_output=True,
                                                                text=True, check=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", str(binary)], capture_output=True,
                                                                     text=True, check=True).stdout, re.M))
    packages = {lib: library_package(paths[lib]) for lib in needed}
    installed = apt_installs(dockerfile_stages()[-1])
    missing = {lib: p for lib, p in packages.items() if p not in installed}
    assert not missing, f"the runtime stage lacks {missing}"


def test_dockerignore_keeps_build_outputs_and_local_state_out():
    lines = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"build", "build-*", ".venv", ".deps", "data"} <= lines


# --- dev container -------------------------------------------------------------------


def test_devcontainer_is_debian_12_set_up_by_dev():
    text = (ROOT / ".devcontainer" / "devcontainer.json").read_text()
    config = json.loads("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//")))
    assert re.search(r"(debian:12|bookworm)", config["image"]), config["image"]
    assert config["postCreateCommand"] == "./dev setup"
    assert {8080, 8087, 8088, 8089} <= set(config["forwardPorts"])


# --- the topologies, started on loopback -------------------------------------------------


class Topology:
    """Every ChatOrbit service of a deployment file as its own process. `aliases` maps
    the addresses the file uses (service:port) to loopback ones as each service starts;
    each process keeps the file's environment but for its listening port (0), bind
    address (127.0.0.1) and data directory."""

    def __init__(self, tmp: Path, aliases: dict[str, str], mongo_hosts: set[str]):
        self.tmp = tmp
        self.aliases = dict(aliases)
        self.mongo_hosts = mongo_hosts
        self.database = "deploy_" + uuid.uuid4().hex[:10]
        self.started: dict[str, Server] = {}

    def localize(self, key: str, value: str) -> str:
        for address, local in self.aliases.items():
            value = re.sub(rf"(?<![\w.-]){re.escape(address)}(?![\w.-])", local, value)
        if key == "MONGO_URL":
            parts = urlsplit(value)
            assert parts.netloc not in self.mongo_hosts, f"MONGO_URL {value} was not mapped"
            value = urlunsplit(parts._replace(path="/" + self.database))
        return value

    def start(self, name: str, env: dict[str, str], addresses: list[str]) -> Server:
        local = {k: self.localize(k, v) for k, v in env.items()}
        local.update({"PORT": "0", "CHATORBIT_BIND": "127.0.0.1"})
        server = Server(local, data_dir=str(self.tmp / name))
        self.started[name] = server
        server.start()
        for a in addresses:
            self.aliases[a] = f"127.0.0.1:{server.port}"
        return server

    def stop(self) -> list[str]:
        bad = []
        for name, s in reversed(list(self.started.items())):
            code = s.stop()
            if code not in (0, None):
                bad.append(f"{name} exited with {code}:\n" + "\n".join(s.logs[-30:]))
        return bad


def check_through_gateway(topology: Topology, gateway: Server, chat_nodes: int) -> None:
    for name, s in topology.started.items():
        assert requests.get(s.url + "/readyz", timeout=5).status_code == 200, f"{name} is not ready"

    def healthy_nodes() -> float:
        text = requests.get(gateway.url + "/metrics", timeout=5).text
        match = re.search(r"^chatorbit_gateway_chat_nodes_healthy (\S+)$", text, re.M)
        return float(match.group(1)) if match else -1

    assert wait_until(lambda: healthy_nodes() == chat_nodes, timeout=TIMEOUT), \
        f"the gateway sees {healthy_nodes()} of {chat_nodes} chat nodes"
    # No cookie jar: a client of the API, not a browser (a cookie-authenticated write
    # would need an allowed Origin).
    http = requests
    email = f"deploy-{uuid.uuid4().hex[:8]}@example.com"
    r = http.post(gateway.url + "/register", json={"email": email, "username": "deploy", "password": "secret123"},
                  timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    r = http.post(gateway.url + "/login", json={"email": email, "password": "secret123"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    me = http.get(gateway.url + "/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert me.status_code == 200 and me.json()["email"] == email, me.text
    room = "deploy-" + uuid.uuid4().hex[:8]
    r = http.post(gateway.url + "/chat/rooms", json={"room_id": room}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"room_id": room}, r.text
    with connect(f"ws://127.0.0.1:{gateway.port}/ws/chat?token={token}&room_id={room}",
                 open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"room_id": room, "content": "through the gateway"}))
        frame = json.loads(ws.recv(timeout=TIMEOUT))
    assert frame["content"] == "through the gateway" and frame["seq"] == 1, frame


def gateway_last(items: list[tuple[str, dict[str, str], list[str]]]):
    return sorted(items, key=lambda item: item[1].get("CHATORBIT_ROLE") == "gateway")


def test_compose_topology_starts_and_answers_through_the_gateway(compose, binary, ferretdb_server, tmp_path):
    redis = test_servers.start_standalone(tmp_path / "redis")
    mongo = urlsplit(ferretdb_server.url).netloc
    topology = Topology(tmp_path, {"redis:6379": redis.addr, "mongo:27017": mongo}, {"mongo:27017"})
    try:
        items = [(name, service_env(s), [f"{name}:{service_env(s)['PORT']}"])
                 for name, s in chatorbit_services(compose).items()]
        for name, env, addresses in gateway_last(items):
            topology.start(name, env, addresses)
        chat = sum(1 for _, env, _ in items if env["CHATORBIT_ROLE"] == "chat")
        check_through_gateway(topology, topology.started["gateway"], chat)
    finally:
        bad = topology.stop()
        redis.stop()
    assert not bad, "\n\n".join(bad)


def test_k8s_topology_starts_and_answers_through_the_gateway(manifests, binary, ferretdb_server, tmp_path):
    redis = test_servers.start_standalone(tmp_path / "redis")
    mongo = urlsplit(ferretdb_server.url).netloc
    backends, mongo_hosts, items = {}, set(), []
    by_workload: dict[str, list[str]] = {}
    for address, (w, index) in pod_addresses(manifests).items():
        by_workload.setdefault(f"{w['metadata']['name']}-{index}", []).append(address)
    for w in workloads(manifests):
        (c,) = w["spec"]["template"]["spec"]["containers"]
        name = w["metadata"]["name"]
        # One process per Deployment, one per StatefulSet pod (the gateway names each).
        pods = range(w["spec"]["replicas"]) if w["kind"] == "StatefulSet" else range(1)
        for i in pods:
            addresses = by_workload.get(f"{name}-{i}", [])
            if c["image"].startswith("redis:"):
                backends.update({a: redis.addr for a in addresses})
            elif c["image"].startswith("mongo:"):
                backends.update({a: mongo for a in addresses})
                mongo_hosts |= set(addresses)
            else:
                items.append((f"{name}-{i}", k8s_env(manifests, c), addresses))
    topology = Topology(tmp_path, backends, mongo_hosts)
    try:
        for name, env, addresses in gateway_last(items):
            topology.start(name, env, addresses)
        chat = sum(1 for _, env, _ in items if env["CHATORBIT_ROLE"] == "chat")
        (gateway,) = [topology.started[n] for n, env, _ in items if env["CHATORBIT_ROLE"] == "gateway"]
        check_through_gateway(topology, gateway, chat)
    finally:
        bad = topology.stop()
        redis.stop()
    assert not bad, "\n\n".join(bad)
