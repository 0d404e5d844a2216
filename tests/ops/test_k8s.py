"""Kubernetes manifests (issue 5, item 5): `kubectl kustomize` renders the example overlay and
the rendered objects carry the seed's numbers (spec/scalability-and-performance.md)."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from ops_common import BUILD_DIR, TOP

K8S = os.path.join(TOP, "deploy", "k8s")


def _mi(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", str(q))
    assert m, q
    return int(m.group(1)) * units[m.group(2)]


def _milli(q):
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


@pytest.fixture(scope="module")
def objs():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    r = subprocess.run(["kubectl", "kustomize", os.path.join(K8S, "overlays", "example")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def find(objs, kind, prefix):
    hits = [v for (k, n), v in objs.items() if k == kind and n.startswith(prefix)]
    assert len(hits) == 1, (kind, prefix, list(objs))
    return hits[0]


def test_everything_is_in_the_namespace(objs):
    assert ("Namespace", "ideaforge-ai") in objs
    for (kind, name), o in objs.items():
        if kind != "Namespace":
            assert o["metadata"].get("namespace") == "ideaforge-ai", (kind, name)


@pytest.mark.parametrize("name,lo,hi,up", [("backend-hpa", 3, 20, 4), ("frontend-hpa", 3, 15, 3)])
def test_hpas_have_the_seeds_numbers(objs, name, lo, hi, up):
    h = objs[("HorizontalPodAutoscaler", name)]
    assert h["apiVersion"] == "autoscaling/v2"
    s = h["spec"]
    assert (s["minReplicas"], s["maxReplicas"]) == (lo, hi)
    target = s["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", name.split("-")[0])
    assert ("Deployment", target["name"]) in objs
    util = {m["resource"]["name"]: m["resource"]["target"] for m in s["metrics"]}
    assert util == {"cpu": {"type": "Utilization", "averageUtilization": 70},
                    "memory": {"type": "Utilization", "averageUtilization": 80}}
    b = s["behavior"]
    assert b["scaleUp"]["policies"] == [{"type": "Pods", "value": up, "periodSeconds": 30}]
    assert b["scaleDown"]["policies"] == [{"type": "Pods", "value": 2, "periodSeconds": 60}]
    assert b["scaleDown"]["stabilizationWindowSeconds"] == 300


def _pod_resources(dep):
    tot = {"req_mem": 0, "req_cpu": 0, "lim_mem": 0, "lim_cpu": 0}
    for c in dep["spec"]["template"]["spec"]["containers"]:
        r = c["resources"]
        tot["req_mem"] += _mi(r["requests"]["memory"])
        tot["req_cpu"] += _milli(r["requests"]["cpu"])
        tot["lim_mem"] += _mi(r["limits"]["memory"])
        tot["lim_cpu"] += _milli(r["limits"]["cpu"])
    return tot


def test_backend_pod_resources_and_shape(objs):
    dep = objs[("Deployment", "backend")]
    assert dep["spec"]["replicas"] == 3
    # the seed's backend pod: requests 512Mi/250m, limits 2Gi/2000m (summed over containers)
    assert _pod_resources(dep) == {"req_mem": 512, "req_cpu": 250, "lim_mem": 2048,
                                   "lim_cpu": 2000}
    spec = dep["spec"]["template"]["spec"]
    names = [c["name"] for c in spec["containers"]]
    assert names == ["api", "nginx"]
    # both containers share the socket directory in an emptyDir
    run = [v for v in spec["volumes"] if v["name"] == "run"][0]
    assert "emptyDir" in run
    for c in spec["containers"]:
        assert {"name": "run", "mountPath": "/run/ideaforge"} in c["volumeMounts"]
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    api = spec["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # API.md 6.1: liveness 40/30/10 s, readiness 10/10/5 s
    lp, rp = api["livenessProbe"], api["readinessProbe"]
    assert (lp["initialDelaySeconds"], lp["periodSeconds"], lp["timeoutSeconds"]) == (40, 30, 10)
    assert (rp["initialDelaySeconds"], rp["periodSeconds"], rp["timeoutSeconds"]) == (10, 10, 5)
    assert api["image"].endswith(":0.1.0")


def test_frontend_pod_resources(objs):
    dep = objs[("Deployment", "frontend")]
    assert dep["spec"]["replicas"] == 3
    assert _pod_resources(dep) == {"req_mem": 256, "req_cpu": 100, "lim_mem": 512,
                                   "lim_cpu": 500}
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_services_ingress_and_pdbs(objs):
    for name in ("backend", "frontend"):
        svc = objs[("Service", name)]
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["sessionAffinity"] == "None"
        pdb = objs[("PodDisruptionBudget", name + "-pdb")]
        assert pdb["spec"]["minAvailable"] == 2
        dep = objs[("Deployment", name)]
        assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
        assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    ing = objs[("Ingress", "ideaforge")]
    assert ing["spec"]["ingressClassName"] == "nginx"
    a = ing["metadata"]["annotations"]
    assert a["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "600"
    assert a["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "600"
    assert a["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    paths = {p["path"]: p["backend"]["service"]["name"]
             for p in ing["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/api": "backend", "/health": "backend", "/": "frontend"}
    assert ing["spec"]["rules"][0]["host"] == "ideaforge.example.org"  # the overlay's patch


def test_migration_job(objs):
    job = objs[("Job", "ideaforge-migrate")]
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][0] == "/usr/bin/ideaforgectl" and c["command"][-1] == "migrate"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def _settings(text, sep):
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            k, v = re.split(sep, line, maxsplit=1)
            out[k.strip()] = v.strip().strip("'")
    return out


def test_datastore_settings_are_the_seeds_and_match_the_vm_files(objs):
    pg = _settings(find(objs, "ConfigMap", "postgresql-config")["data"]["postgresql.conf"],
                   r"\s*=\s*")
    want = {"max_connections": "500", "shared_buffers": "512MB",
            "effective_cache_size": "1536MB", "work_mem": "4MB"}
    assert {k: pg[k] for k in want} == want
    vm = _settings(open(os.path.join(TOP, "deploy", "postgresql", "ideaforge.conf")).read(),
                   r"\s*=\s*")
    assert {k: vm[k] for k in want} == want
    rd = _settings(find(objs, "ConfigMap", "redis-config")["data"]["redis.conf"], r"\s+")
    want = {"maxmemory": "1gb", "maxmemory-policy": "allkeys-lru", "appendonly": "yes"}
    assert {k: rd[k] for k in want} == want
    vm = _settings(open(os.path.join(TOP, "deploy", "redis", "ideaforge.conf")).read(), r"\s+")
    assert {k: vm[k] for k in want} == want
    # the seed's datastore resources
    redis = objs[("StatefulSet", "redis")]["spec"]["template"]["spec"]["containers"][0]
    assert redis["resources"] == {"requests": {"memory": "512Mi", "cpu": "200m"},
                                  "limits": {"memory": "2Gi", "cpu": "1000m"}}
    pgs = objs[("StatefulSet", "postgresql")]
    assert pgs["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] \
        == "2Gi"
    assert pgs["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] \
        == "20Gi"


def test_pod_config_is_valid_and_fits_the_connection_budget(objs):
    cm = find(objs, "ConfigMap", "ideaforge-config")
    conf = _settings(cm["data"]["ideaforge.conf"], r"\s*=\s*")
    # the documented rule: pods x workers_max x (pool + overflow) <= max_connections - 20
    hpa = objs[("HorizontalPodAutoscaler", "backend-hpa")]["spec"]["maxReplicas"]
    per_pod = int(conf["workers_max"]) * (int(conf["db_pool_size"]) +
                                          int(conf["db_max_overflow"]))
    assert hpa * per_pod <= 500 - 20, (hpa, per_pod)
    assert conf["listen"] == "unix:/run/ideaforge/api.sock"
    # every key is one the server knows, and the values pass its validation
    api = os.path.join(BUILD_DIR, "ideaforge-api")
    if os.access(api, os.X_OK):
        path = os.path.join(K8S, "base", "ideaforge.conf")
        r = subprocess.run([api, "--config", path, "--print-config"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr


def test_nginx_configs_of_the_pods_parse():
    if shutil.which("nginx") is None:
        pytest.skip("nginx not installed")
    for name in ("backend.conf", "frontend.conf"):
        r = subprocess.run(["nginx", "-t", "-q", "-c", os.path.join(K8S, "base", "nginx", name)],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, (name, r.stderr)


def test_containerfile_is_multistage_autotools_nonroot():
    text = open(os.path.join(TOP, "deploy", "Containerfile")).read()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert len(froms) == 2 and froms[0][1] == "build"
    assert "make install DESTDIR=/out" in text and "/src/configure" in text
    assert "COPY --from=build /out/ /" in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    # every file it copies exists
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for f in src.split():
            assert f == "." or os.path.exists(os.path.join(TOP, f)), f
