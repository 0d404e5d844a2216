"""Kubernetes manifests (issue 5, item 5; issue 15, items 1 to 6; issue 11, item 7):
`kubectl kustomize` renders every overlay (and base and data on their own), the rendered objects
carry the seed's numbers (spec/scalability-and-performance.md), and every name one object uses
for another (probe ports, Service targetPorts, HPA targets, selectors of Services, PDBs and
NetworkPolicies, ConfigMaps of volumes) names something that exists. Offline: no cluster.

kubectl comes from Debian's archive (kubernetes-client) or Google's package (kubectl); where
neither is installed the tests that need a rendering skip, and those over the files run."""

import copy
import http.client
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
import yaml

from ops_common import BUILD_DIR, TOP

K8S = os.path.join(TOP, "deploy", "k8s")
AGENTD_DB_CONNECTIONS = 7
OVERLAYS = sorted(d for d in os.listdir(os.path.join(K8S, "overlays"))
                  if os.path.exists(os.path.join(K8S, "overlays", d, "kustomization.yaml")))
# every kustomization: each overlay, and base and data rendered on their own
KUSTOMIZATIONS = ["overlays/" + o for o in OVERLAYS] + ["base", "data"]


def _mi(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", str(q))
    assert m, q
    return int(m.group(1)) * units[m.group(2)]


def _milli(q):
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


_RENDERED = {}


def render(kdir):
    """The objects of `kubectl kustomize deploy/k8s/<kdir>`, keyed by (kind, name)."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed (Debian: apt-get install kubernetes-client)")
    if kdir not in _RENDERED:
        r = subprocess.run(["kubectl", "kustomize", os.path.join(K8S, kdir)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (kdir, r.stderr)
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        _RENDERED[kdir] = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        assert len(_RENDERED[kdir]) == len(docs), "two objects of the same kind and name"
    return _RENDERED[kdir]


@pytest.fixture(scope="module")
def objs():
    return render("overlays/example")


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
    # the documented rule: pods x workers_max x (pool + overflow) <= max_connections - 20,
    # with agentd's pods at AGENTD_DB_CONNECTIONS each (its pool of 2 + 4 overflow and its
    # LISTEN connection, fixed in app/agentd.c)
    hpa = objs[("HorizontalPodAutoscaler", "backend-hpa")]["spec"]["maxReplicas"]
    per_pod = int(conf["workers_max"]) * (int(conf["db_pool_size"]) +
                                          int(conf["db_max_overflow"]))
    agentd = objs[("HorizontalPodAutoscaler", "agentd-hpa")]["spec"]["maxReplicas"]
    assert hpa * per_pod + agentd * AGENTD_DB_CONNECTIONS <= 500 - 20, (hpa, per_pod, agentd)
    assert conf["listen"] == "unix:/run/ideaforge/api.sock"
    # every key is one the server knows, and the values pass its validation
    api = os.path.join(BUILD_DIR, "ideaforge-api")
    if os.access(api, os.X_OK):
        path = os.path.join(K8S, "base", "ideaforge.conf")
        r = subprocess.run([api, "--config", path, "--print-config"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr


def test_nginx_configs_of_the_pods_parse(tmp_path):
    if shutil.which("nginx") is None:
        pytest.skip("nginx not installed")
    for name in ("backend.conf", "frontend.conf"):
        text = open(os.path.join(K8S, "base", "nginx", name)).read()
        # the Service name agentd resolves only inside the cluster (nginx resolves upstream
        # names when it loads its configuration): here it stands for the loopback address
        text = text.replace("server agentd:8090;", "server 127.0.0.1:8090;")
        path = tmp_path / name
        path.write_text(text)
        r = subprocess.run(["nginx", "-t", "-q", "-c", str(path)],
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


# -------------------------------------------------------------------------------------------
# Issue 15, item 1: every name one object uses for another exists (checked on every rendering)

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def _pod_specs(objs):
    """(kind, name, namespace, template labels, pod spec) of every workload."""
    out = []
    for (kind, name), o in objs.items():
        if kind in WORKLOADS:
            t = o["spec"]["template"]
            out.append((kind, name, o["metadata"].get("namespace"),
                        t["metadata"].get("labels", {}), t["spec"]))
    return out


def _containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def _matches(selector, labels):
    """matchLabels (or a plain Service selector) against labels; matchExpressions unsupported."""
    assert "matchExpressions" not in selector, selector
    want = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return all(labels.get(k) == v for k, v in want.items())


def _selected(objs, selector, namespace=None):
    return [p for p in _pod_specs(objs) if _matches(selector, p[3])
            and (namespace is None or p[2] == namespace)]


def _declared(spec, port):
    """Does some container of the pod declare port (a name or a number)?"""
    for c in _containers(spec):
        for p in c.get("ports", []):
            if port in (p.get("name"), p.get("containerPort")):
                return True
    return False


def reference_errors(objs):
    """Every dangling reference of a rendering, as readable strings (empty: all resolve)."""
    errors = []
    configmaps = {n for (k, n) in objs if k == "ConfigMap"}
    for kind, name, ns, labels, spec in _pod_specs(objs):
        for c in _containers(spec):
            own = {p.get("name") for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                pr = c.get(probe)
                if not pr:
                    continue
                for how in ("httpGet", "tcpSocket", "grpc"):
                    if how in pr:
                        port = pr[how]["port"]
                        # the kubelet resolves a port name among the probe's own container's
                        # ports only; a number is the pod's, so some container must listen
                        if isinstance(port, str) and port not in own:
                            errors.append("%s/%s container %s: %s port %r is not one of its "
                                          "ports %s" % (kind, name, c["name"], probe, port,
                                                        sorted(x for x in own if x)))
                        if isinstance(port, int) and not _declared(spec, port):
                            errors.append("%s/%s container %s: %s port %d is declared by no "
                                          "container" % (kind, name, c["name"], probe, port))
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                errors.append("%s/%s volume %s: no ConfigMap %s" % (kind, name, v["name"],
                                                                    v["configMap"]["name"]))
    for (kind, name), o in objs.items():
        ns = o["metadata"].get("namespace")
        if kind == "Service" and o["spec"].get("selector"):
            pods = _selected(objs, o["spec"]["selector"], ns)
            if not pods:
                errors.append("Service/%s selects no pod" % name)
            for p in o["spec"].get("ports", []):
                tp = p.get("targetPort", p["port"])
                if pods and not all(_declared(spec, tp) for *_, spec in pods):
                    errors.append("Service/%s targetPort %r is not a port of the pods it "
                                  "selects" % (name, tp))
        if kind == "HorizontalPodAutoscaler":
            t = o["spec"]["scaleTargetRef"]
            if (t["kind"], t["name"]) not in objs:
                errors.append("HPA/%s targets %s/%s, which does not exist" % (name, t["kind"],
                                                                              t["name"]))
        if kind == "PodDisruptionBudget" and not _selected(objs, o["spec"]["selector"], ns):
            errors.append("PDB/%s selects no pod" % name)
        if kind == "Ingress":
            for rule in o["spec"].get("rules", []):
                for path in rule["http"]["paths"]:
                    svc = path["backend"]["service"]
                    s = objs.get(("Service", svc["name"]))
                    if s is None:
                        errors.append("Ingress/%s: no Service %s" % (name, svc["name"]))
                    elif "name" in svc["port"] and svc["port"]["name"] not in \
                            [p.get("name") for p in s["spec"]["ports"]]:
                        errors.append("Ingress/%s: Service %s has no port %s" % (
                            name, svc["name"], svc["port"]["name"]))
        if kind == "NetworkPolicy":
            sel = o["spec"]["podSelector"]
            targets = _selected(objs, sel, ns)
            if sel and not targets:
                errors.append("NetworkPolicy/%s selects no pod" % name)
            for rule in o["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    if "podSelector" in peer and "namespaceSelector" not in peer and \
                            not _selected(objs, peer["podSelector"], ns):
                        errors.append("NetworkPolicy/%s: ingress from %s, which is no pod" % (
                            name, peer["podSelector"]))
                for p in rule.get("ports", []):
                    if not all(_declared(spec, p["port"]) for *_, spec in targets):
                        errors.append("NetworkPolicy/%s: ingress port %r is not a port of "
                                      "the pods it protects" % (name, p["port"]))
            for rule in o["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        dest = _selected(objs, peer["podSelector"], ns)
                        if not dest:
                            errors.append("NetworkPolicy/%s: egress to %s, which is no pod" % (
                                name, peer["podSelector"]))
                        for p in rule.get("ports", []):
                            if not all(_declared(spec, p["port"]) for *_, spec in dest):
                                errors.append("NetworkPolicy/%s: egress port %r is not a "
                                              "port of %s" % (name, p["port"],
                                                              peer["podSelector"]))
    return errors


@pytest.mark.parametrize("kdir", KUSTOMIZATIONS)
def test_api_pods_never_become_ready_every_reference_resolves(kdir):
    objs = render(kdir)
    assert objs
    errors = reference_errors(objs)
    if kdir in ("base", "data"):
        # rendered alone, base's NetworkPolicy for agentd names the datastore pods of data/
        # (and data's names the backend and agentd pods): those resolve in the overlays only
        # and data's StatefulSets mount the ConfigMaps of base/datastore-config.yaml
        errors = [e for e in errors if "which is no pod" not in e and
                  "is not a port of {" not in e and ": no ConfigMap " not in e]
    assert errors == []


def test_api_pods_never_become_ready_the_check_finds_the_original_defect(objs):
    """The defect of issue 15: the api container's probes named the port `http`, which only
    the nginx container declares; the check must see it."""
    broken = copy.deepcopy(objs)
    api = [c for c in broken[("Deployment", "backend")]["spec"]["template"]["spec"]
           ["containers"] if c["name"] == "api"][0]
    api["readinessProbe"]["httpGet"]["port"] = "http"
    errors = reference_errors(broken)
    assert len(errors) == 1 and "container api: readinessProbe port 'http'" in errors[0], errors
    # ... and a Service whose targetPort no pod declares, an HPA aimed at nothing
    broken[("Service", "agentd")]["spec"]["ports"][0]["targetPort"] = "web"
    broken[("HorizontalPodAutoscaler", "agentd-hpa")]["spec"]["scaleTargetRef"]["name"] = "x"
    assert len(reference_errors(broken)) == 3


def test_api_pods_never_become_ready_probes_reach_nginx_and_the_api(objs):
    spec = objs[("Deployment", "backend")]["spec"]["template"]["spec"]
    api, nginx = spec["containers"]
    assert api.get("ports") is None  # FastCGI on the unix socket only
    http = [p for p in nginx["ports"] if p["name"] == "http"][0]["containerPort"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"]["port"] == http
    assert nginx["livenessProbe"]["httpGet"]["port"] == "http"
    assert "location = /_nginx/live" in open(os.path.join(K8S, "base", "nginx",
                                                          "backend.conf")).read()


# -------------------------------------------------------------------------------------------
# Issue 15, item 2: `kubectl apply -k` never resets the Secret

SECRET_KEYS = {"jwt.secret", "secrets.key", "postgres-password", "redis-password", "openai.key",
               "anthropic.key", "gemini.key"}


def _kustomization_files():
    for root, _, files in os.walk(K8S):
        if "kustomization.yaml" in files:
            yield os.path.join(root, "kustomization.yaml")


def test_apply_resets_the_secret_to_change_me_no_secret_in_any_kustomization():
    for k in _kustomization_files():
        doc = yaml.safe_load(open(k))
        assert "secretGenerator" not in doc, k
        for res in doc.get("resources", []):
            assert "secret" not in res, (k, res)
    for kdir in KUSTOMIZATIONS:
        if shutil.which("kubectl"):
            assert [n for (kind, n) in render(kdir) if kind == "Secret"] == [], kdir
    # nothing under base/, data/ or overlays/ is a Secret either
    for root, _, files in os.walk(K8S):
        for f in files:
            if f.endswith(".yaml") and root != K8S:
                for d in yaml.safe_load_all(open(os.path.join(root, f))):
                    assert not (d and d.get("kind") == "Secret"), os.path.join(root, f)


def test_apply_resets_the_secret_to_change_me_example_has_every_key_the_pods_use(objs):
    example = yaml.safe_load(open(os.path.join(K8S, "secret.example.yaml")))
    assert example["kind"] == "Secret" and example["metadata"]["name"] == "ideaforge-secrets"
    assert set(example["stringData"]) == SECRET_KEYS
    used = set()
    for *_, spec in _pod_specs(objs):
        for c in _containers(spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "ideaforge-secrets"
                    used.add(ref["key"])
    conf = _settings(find(objs, "ConfigMap", "ideaforge-config")["data"]["ideaforge.conf"],
                     r"\s*=\s*")
    for k, v in conf.items():
        if k.endswith("_file") and v.startswith("/etc/ideaforge/secrets/"):
            used.add(v.rsplit("/", 1)[1])
    assert used == SECRET_KEYS


def _fake_kubectl(tmp_path, exists):
    log = tmp_path / "kubectl.log"
    store = tmp_path / "secret"
    store.mkdir()
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("""#!/bin/sh
echo "$*" >> %(log)s
case "$*" in
*"get secret"*) exit %(get)d ;;
*"create secret generic"*)
	for a in "$@"; do
		case "$a" in --from-file=*) kv=${a#--from-file=}; cp "${kv#*=}" "%(store)s/${kv%%%%=*}" ;; esac
	done ;;
esac
exit 0
""" % {"log": log, "get": 0 if exists else 1, "store": store})
    kubectl.chmod(0o755)
    return kubectl, log, store


def test_apply_resets_the_secret_to_change_me_create_secret_never_overwrites(tmp_path):
    script = os.path.join(K8S, "create-secret.sh")
    text = open(script).read()
    assert "apply" not in re.sub(r"#.*", "", text) and "--dry-run" not in text
    kubectl, log, store = _fake_kubectl(tmp_path, exists=True)
    r = subprocess.run(["sh", script, "ns1"], env=dict(os.environ, KUBECTL=str(kubectl)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "exists" in r.stdout
    assert log.read_text().splitlines() == ["-n ns1 get secret ideaforge-secrets"]


def test_apply_resets_the_secret_to_change_me_create_secret_makes_every_key(tmp_path):
    kubectl, log, store = _fake_kubectl(tmp_path, exists=False)
    key = tmp_path / "openai.txt"
    key.write_text("sk-test\n")
    r = subprocess.run(["sh", os.path.join(K8S, "create-secret.sh")],
                       env=dict(os.environ, KUBECTL=str(kubectl), OPENAI_API_KEY_FILE=str(key)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[-1].startswith("-n ideaforge-ai create secret generic ideaforge-secrets ")
    got = {f: (store / f).read_text() for f in os.listdir(store)}
    assert set(got) == SECRET_KEYS
    assert len(got["jwt.secret"]) >= 32
    for k, n in (("secrets.key", 64), ("redis-password", 64), ("postgres-password", 48)):
        assert re.fullmatch("[0-9a-f]{%d}" % n, got[k]), k  # hex: URL- and config-safe
    assert got["openai.key"] == "sk-test\n" and got["gemini.key"] == ""


# -------------------------------------------------------------------------------------------
# Issue 15, item 3: migrations run before the new pods take traffic

def test_migrations_race_the_deployment(objs):
    assert [n for (k, n) in objs if k == "Job"] == []  # no Job racing the Deployment
    for name, container in (("backend", "api"), ("agentd", "agentd")):
        dep = objs[("Deployment", name)]
        spec = dep["spec"]["template"]["spec"]
        init = spec["initContainers"]
        assert [c["name"] for c in init] == ["migrate"]
        m = init[0]
        assert m["command"][0] == "/usr/bin/ideaforgectl" and m["command"][-1] == "migrate"
        assert m["image"] == [c for c in spec["containers"] if c["name"] == container][0]["image"]
        assert {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {
            "name": "ideaforge-secrets", "key": "postgres-password"}}} in m["env"]
        mounts = {v["mountPath"] for v in m["volumeMounts"]}
        assert {"/etc/ideaforge/ideaforge.conf", "/etc/ideaforge/secrets"} <= mounts
        # the old pods keep the traffic until the new ones are ready
        assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    api = objs[("Deployment", "backend")]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"


# -------------------------------------------------------------------------------------------
# Issue 15, item 4: termination does not drop requests

def _prestop_seconds(c):
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    m = re.search(r"sleep[\"', ]+(\d+)", " ".join(cmd))
    assert m, cmd
    return int(m.group(1))


def test_termination_drops_requests(objs):
    conf = _settings(find(objs, "ConfigMap", "ideaforge-config")["data"]["ideaforge.conf"],
                     r"\s*=\s*")
    graceful = int(conf.get("graceful_timeout_s", 30))
    spec = objs[("Deployment", "backend")]["spec"]["template"]["spec"]
    api, nginx = spec["containers"]
    # the grace period counts from the start of preStop: pause + the API's drain must fit
    assert spec["terminationGracePeriodSeconds"] > _prestop_seconds(api) + graceful
    assert _prestop_seconds(api) >= 5 and _prestop_seconds(nginx) >= 5
    # nginx stops gracefully (SIGQUIT) and the hook waits for it: SIGTERM would cut requests
    hook = " ".join(nginx["lifecycle"]["preStop"]["exec"]["command"])
    assert "kill -QUIT" in hook and "/tmp/nginx.pid" in hook and "while" in hook
    assert "pid /tmp/nginx.pid;" in open(os.path.join(K8S, "base", "nginx", "backend.conf")).read()


# -------------------------------------------------------------------------------------------
# Issue 15, item 5: Redis requires a password; NetworkPolicies

def test_redis_open_to_every_pod_requires_a_password(objs):
    conf = find(objs, "ConfigMap", "redis-config")["data"]["redis.conf"]
    rd = _settings(conf, r"\s+")
    assert rd["protected-mode"] == "yes" and rd["include"] == "/run/redis/auth.conf"
    assert "requirepass" not in conf  # the password is in no ConfigMap
    redis = objs[("StatefulSet", "redis")]["spec"]["template"]["spec"]
    c = redis["containers"][0]
    script = c["command"][-1]
    assert "requirepass" in script and "$REDIS_PASSWORD" in script and "> /run/redis/auth.conf" \
        in script and "umask 077" in script
    assert "exec redis-server /usr/local/etc/redis/redis.conf" in script
    assert "--requirepass" not in " ".join(c["command"] + c.get("args", []))
    assert {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "ideaforge-secrets", "key": "redis-password"}}} in c["env"]
    assert "REDISCLI_AUTH" in " ".join(c["readinessProbe"]["exec"]["command"])
    assert redis["securityContext"]["runAsNonRoot"] is True
    auth = [v for v in redis["volumes"] if v["name"] == "auth"][0]
    assert auth["emptyDir"]["medium"] == "Memory"
    # the API and agentd connect with the password
    for name, cname in (("backend", "api"), ("agentd", "agentd")):
        spec = objs[("Deployment", name)]["spec"]["template"]["spec"]
        env = [c for c in spec["containers"] if c["name"] == cname][0]["env"]
        names = [e["name"] for e in env]
        url = [e for e in env if e["name"] == "IDEAFORGE_REDIS_URL"][0]["value"]
        assert url == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
        # $(VAR) expands only from variables defined before it
        assert names.index("REDIS_PASSWORD") < names.index("IDEAFORGE_REDIS_URL")


def test_redis_open_to_every_pod_the_config_refuses_clients_without_the_password(objs, tmp_path):
    """The rendered redis.conf, run by a real redis-server: no password, no answer."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed")
    conf = find(objs, "ConfigMap", "redis-config")["data"]["redis.conf"]
    (tmp_path / "auth.conf").write_text("requirepass s3cret0123\n")
    conf = conf.replace("/run/redis/auth.conf", str(tmp_path / "auth.conf"))
    conf = conf.replace("dir /data", "dir %s" % tmp_path).replace("bind 0.0.0.0", "bind 127.0.0.1")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    conf += "\nport %d\nappendonly no\nsave \"\"\n" % port
    (tmp_path / "redis.conf").write_text(conf)
    p = subprocess.Popen([server, str(tmp_path / "redis.conf")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        def ask(*cmd):
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        out = b""
                        for c in cmd:
                            s.sendall(c.encode() + b"\r\n")
                            out += s.recv(256)
                        return out.decode()
                except ConnectionRefusedError:
                    time.sleep(0.05)
            raise AssertionError("redis-server did not start")
        assert ask("PING").startswith("-NOAUTH")
        assert ask("AUTH wrong", "PING").startswith("-WRONGPASS")
        assert ask("AUTH s3cret0123", "PING") == "+OK\r\n+PONG\r\n"
        assert "protected-mode\r\n$3\r\nyes" in ask("AUTH s3cret0123", "CONFIG GET protected-mode")
    finally:
        p.terminate()
        p.wait(10)


def _policy(objs, name):
    return objs[("NetworkPolicy", name)]["spec"]


def _peers(rule):
    return [p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            if "namespaceSelector" not in p else
            "ns:" + p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in rule.get("from", rule.get("to", []))]


def test_datastores_reachable_by_every_pod_network_policies(objs):
    # nothing is reachable unless a policy says so
    deny = _policy(objs, "default-deny-ingress")
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and \
        not deny.get("ingress")
    # only the API and agentd reach PostgreSQL and Redis
    for name, port in (("postgresql", "postgresql"), ("redis", "redis")):
        p = _policy(objs, name)
        assert p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "ideaforge-" + name
        assert len(p["ingress"]) == 1
        assert sorted(_peers(p["ingress"][0])) == ["ideaforge-agentd", "ideaforge-backend"]
        assert p["ingress"][0]["ports"] == [{"port": port, "protocol": "TCP"}]
    # only nginx (the backend pods) reaches agentd; Prometheus scrapes it
    a = _policy(objs, "agentd")
    assert sorted(a["policyTypes"]) == ["Egress", "Ingress"]
    assert [_peers(r) for r in a["ingress"]] == [["ideaforge-backend"], ["ns:monitoring"]]
    assert all(r["ports"] == [{"port": 8090, "protocol": "TCP"}] for r in a["ingress"])
    # agentd reaches DNS, PostgreSQL, Redis and the providers (443), nothing else
    egress = {(p["port"], p["protocol"]) for r in a["egress"] for p in r["ports"]}
    assert egress == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (6379, "TCP"), (443, "TCP")}
    out = [r for r in a["egress"] if r["ports"] == [{"port": 443, "protocol": "TCP"}]][0]
    assert {t["ipBlock"]["cidr"] for t in out["to"]} == {"0.0.0.0/0", "::/0"}
    # the API is reachable only through nginx: the backend pods admit the ingress controller
    # (and Prometheus) on nginx's port, and the API has no network port at all
    b = _policy(objs, "backend")
    assert [_peers(r) for r in b["ingress"]] == [["ns:ingress-nginx", "ns:monitoring"]]
    assert b["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    api = objs[("Deployment", "backend")]["spec"]["template"]["spec"]["containers"][0]
    assert api["name"] == "api" and not api.get("ports")
    f = _policy(objs, "frontend")
    assert [_peers(r) for r in f["ingress"]] == [["ns:ingress-nginx"]]
    # every pod is covered by a policy of its own besides the default deny
    covered = {n for (k, n), o in objs.items() if k == "NetworkPolicy" and o["spec"]["podSelector"]}
    assert covered == {"backend", "frontend", "agentd", "postgresql", "redis"}


# -------------------------------------------------------------------------------------------
# Issue 15, item 6: the build context, and the frontend's headers

IGNORE_FILES = (".containerignore", ".dockerignore")


def _ignored(patterns, path):
    """Docker/podman semantics, enough for our patterns: a path is left out when it or one of
    its parent directories matches a pattern (** = any number of directories)."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        for pat in patterns:
            rx = re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*") \
                .replace(r"\?", "[^/]")
            if re.fullmatch(rx, sub):
                return True
    return False


def _ignore_patterns(name):
    lines = open(os.path.join(TOP, name)).read().splitlines()
    pats = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert not [p for p in pats if p.startswith("!")]
    return pats


def test_build_copies_run_build_outputs_and_git():
    texts = [open(os.path.join(TOP, n)).read() for n in IGNORE_FILES]
    assert texts[0] == texts[1], "the two ignore files differ"
    pats = _ignore_patterns(IGNORE_FILES[0])
    for path in (".git", ".git/HEAD", "run", "run/test/ideaforge.conf", "build", "build/x.o",
                 "build-asan", "build-asan/ideaforge-api", "node_modules",
                 "tests/browser/node_modules/x/index.js", "web/node_modules/a",
                 "tests/ops/__pycache__/x.pyc", "__pycache__", "lib/__pycache__/a.pyc",
                 "config.status", "Makefile", "lib/.deps/a.Po", "lib/a.o"):
        assert _ignored(pats, path), path
    # the sources stay in: everything git tracks, and what the Containerfile copies
    tracked = subprocess.run(["git", "-C", TOP, "ls-files"], capture_output=True, text=True,
                             timeout=30)
    files = tracked.stdout.split() if tracked.returncode == 0 else []
    for f in files:
        assert not _ignored(pats, f), f
    text = open(os.path.join(TOP, "deploy", "Containerfile")).read()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for f in src.split():
            assert f == "." or not _ignored(pats, f), f


def _vm_site_headers():
    """The add_header directives of the VM site's server block (nginx/ideaforge.conf.in)."""
    text = open(os.path.join(TOP, "nginx", "ideaforge.conf.in")).read()
    return dict(re.findall(r'^\tadd_header ([\w-]+) ("[^"]*"|\S+) always;', text, re.M))


def _locations(text):
    """The bodies of the location blocks of an nginx config (nested braces handled)."""
    out = []
    for m in re.finditer(r"^\s*location [^{]*\{", text, re.M):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.start():i])
    return out


SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                    "Content-Security-Policy")


@pytest.mark.parametrize("name", ["frontend.conf", "backend.conf"])
def test_frontend_static_files_two_cache_control_headers_and_no_csp(name):
    text = open(os.path.join(K8S, "base", "nginx", name)).read()
    vm = _vm_site_headers()
    assert set(SECURITY_HEADERS) <= set(vm)
    mine = dict(re.findall(r'^\t\tadd_header ([\w-]+) ("[^"]*"|\S+) always;', text, re.M))
    for h in SECURITY_HEADERS:
        assert mine.get(h) == vm[h], h
    # no add_header in a location (it would drop the server's headers there), no `expires`
    # (a second Cache-Control next to add_header's)
    for loc in _locations(text):
        assert "add_header" not in loc, loc
    assert not re.search(r"^\s*expires\b", text, re.M)
    assert len(re.findall(r"add_header Cache-Control", text)) == 1


def test_frontend_static_files_two_cache_control_headers_served(tmp_path):
    """frontend.conf run by a real nginx: exactly one Cache-Control on every answer, and the
    VM site's security headers on every answer."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx not installed")
    web = tmp_path / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>x</title>")
    (web / "assets" / "app.0123abcd.js").write_text("console.log(1)")
    (web / "favicon.ico").write_text("ico")
    os.chmod(tmp_path, 0o755)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    text = open(os.path.join(K8S, "base", "nginx", "frontend.conf")).read()
    text = text.replace("listen 8080;", "listen 127.0.0.1:%d;" % port)
    text = text.replace("/tmp/", str(tmp_path) + "/")
    text = text.replace("root /usr/share/ideaforge/web;", "root %s;" % web)
    text = text.replace("daemon off;", "daemon off;\nuser root;")
    (tmp_path / "nginx.conf").write_text(text)
    p = subprocess.Popen(["nginx", "-p", str(tmp_path) + "/", "-e", str(tmp_path / "err.log"),
                          "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.PIPE)
    vm = _vm_site_headers()
    try:
        def get(path):
            for _ in range(100):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", path)
                    r = conn.getresponse()
                    r.read()
                    return r
                except ConnectionRefusedError:
                    time.sleep(0.05)
            raise AssertionError("nginx did not start: %s" % p.stderr.read())
        for path, status, cache in (
                ("/", 200, "no-cache"), ("/index.html", 200, "no-cache"),
                ("/products/42", 200, "no-cache"), ("/favicon.ico", 200, "no-cache"),
                ("/assets/app.0123abcd.js", 200, "public, max-age=31536000, immutable"),
                ("/assets/gone.0123abcd.js", 404, "no-cache"), ("/healthz", 200, "no-cache")):
            r = get(path)
            assert r.status == status, path
            assert r.msg.get_all("Cache-Control") == [cache], (path, r.msg.get_all(
                "Cache-Control"))
            assert r.getheader("Expires") is None, path
            for h in SECURITY_HEADERS:
                assert r.msg.get_all(h) == [vm[h].strip('"')], (path, h)
    finally:
        p.terminate()
        p.wait(10)


# -------------------------------------------------------------------------------------------
# Issue 11, item 7: ideaforge-agentd's Deployment of its own

def test_agentd_has_no_deployment_of_its_own(objs):
    dep = objs[("Deployment", "agentd")]
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    backend = objs[("Deployment", "backend")]["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == backend["image"]  # the same image as the API
    assert c["command"] == ["/usr/bin/ideaforge-agentd", "--config",
                            "/etc/ideaforge/ideaforge.conf"]
    env = {e["name"]: e for e in c["env"]}
    # TCP (a unix socket cannot cross pods); the port the container declares
    listen = env["IDEAFORGE_AGENTD_LISTEN"]["value"]
    host, port = listen.rsplit(":", 1)
    assert host == "0.0.0.0"
    assert c["ports"] == [{"name": "http", "containerPort": int(port)}]
    # ready when GET /status answers
    assert c["readinessProbe"]["httpGet"] == {"path": "/status", "port": "http"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/status"
    # SIGTERM hands the running jobs back: time for it
    assert spec["terminationGracePeriodSeconds"] >= 30
    assert _prestop_seconds(c) < spec["terminationGracePeriodSeconds"]
    # provider keys are files of the Secret
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vol = [v for v in spec["volumes"] if v["name"] == mounts["/etc/ideaforge/secrets"]][0]
    assert vol["secret"]["secretName"] == "ideaforge-secrets"
    conf = _settings(find(objs, "ConfigMap", "ideaforge-config")["data"]["ideaforge.conf"],
                     r"\s*=\s*")
    for p in ("openai", "anthropic", "gemini"):
        assert conf[p + "_api_key_file"] == "/etc/ideaforge/secrets/%s.key" % p
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # the Service nginx proxies to, the HPA on CPU like the API's, a PDB
    svc = objs[("Service", "agentd")]["spec"]
    assert svc["ports"] == [{"name": "http", "port": int(port), "targetPort": "http"}]
    h = objs[("HorizontalPodAutoscaler", "agentd-hpa")]["spec"]
    assert h["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "name": "agentd"}
    assert h["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in h["metrics"]] == ["cpu"]
    assert h["metrics"][0]["resource"]["target"] == {"type": "Utilization",
                                                     "averageUtilization": 70}
    assert objs[("PodDisruptionBudget", "agentd-pdb")]["spec"]["minAvailable"] >= 1


def test_agentd_has_no_deployment_of_its_own_nginx_proxies_to_it(objs):
    text = open(os.path.join(K8S, "base", "nginx", "backend.conf")).read()
    port = objs[("Service", "agentd")]["spec"]["ports"][0]["port"]
    assert re.search(r"upstream ideaforge_agentd \{\s*server agentd:%d;" % port, text)
    (loc,) = [b for b in _locations(text) if b.lstrip().startswith("location ^~ /_agentd/")]
    for d in ("internal;", "proxy_pass http://ideaforge_agentd;", "proxy_buffering off;",
              "proxy_http_version 1.1;", "gzip off;"):
        assert d in loc, d
    read = int(re.search(r"proxy_read_timeout (\d+)s;", loc).group(1))
    assert read >= 600
    # the answers are private like the API's
    assert "_agentd" in re.search(r"map \$uri \$ideaforge_cache_control \{[^}]*", text).group(0)


def test_agentd_has_no_deployment_of_its_own_config_keys_exist():
    """The keys the manifests set (in ideaforge.conf and as IDEAFORGE_<KEY>) are keys of the
    programs (app/config.c, lib/srv.c)."""
    known = set()
    for f in ("app/config.c", "lib/srv.c"):
        path = os.path.join(TOP, f)
        if os.path.exists(path):
            known |= set(re.findall(r'(?:KF?\(|\{)"(\w+)", CFG_', open(path).read()))
    assert "agentd_listen" in known
    conf = _settings(open(os.path.join(K8S, "base", "ideaforge.conf")).read(), r"\s*=\s*")
    env = set()
    for kdir in ("base",):
        for f in os.listdir(os.path.join(K8S, kdir)):
            if f.endswith(".yaml"):
                env |= {k.lower() for k in re.findall(r"name: IDEAFORGE_(\w+)",
                                                      open(os.path.join(K8S, kdir, f)).read())}
    unknown = sorted(k for k in set(conf) | env if k not in known)
    if unknown and not os.path.exists(os.path.join(TOP, "lib", "srv.c")):
        pytest.skip("no lib/srv.c to read the server's keys from")
    # the server's own keys (listen, workers, database_url, ...) are in lib/srv.c
    assert unknown == []
