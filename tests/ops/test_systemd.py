"""The installed systemd units, sysusers.d and tmpfiles.d files (issue 5, item 3):
`systemd-analyze verify` clean, hardened, and the user and runtime directory they need."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze not installed")


@pytest.fixture(scope="module")
def units(installed):
    """The installed units, with the installed binaries' paths prefixed by DESTDIR (verify
    checks that ExecStart= is executable); nothing else is changed."""
    dest, d = installed
    tmp = tempfile.mkdtemp(prefix="ideaforge-units-")
    src = dest + d["systemdsystemunitdir"]
    for u in os.listdir(src):
        with open(os.path.join(src, u)) as f:
            text = f.read().replace(d["bindir"] + "/", dest + d["bindir"] + "/")
        with open(os.path.join(tmp, u), "w") as f:
            f.write(text)
    yield tmp, dest, d
    shutil.rmtree(tmp, ignore_errors=True)


def test_verify_is_clean(units):
    tmp, _, _ = units
    r = subprocess.run(["systemd-analyze", "verify", "./ideaforge-api.socket",
                        "./ideaforge-api.service", "./ideaforge-agentd.service"], cwd=tmp, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_service_is_hardened(units):
    tmp, _, _ = units
    text = open(os.path.join(tmp, "ideaforge-api.service")).read()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ProtectHome=yes", "CapabilityBoundingSet=", "User=ideaforge",
                 "SystemCallFilter=@system-service", "Type=notify"):
        assert re.search("^" + re.escape(line) + "$", text, re.M), line
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        "./ideaforge-api.service"], cwd=tmp, capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"Overall exposure level for ideaforge-api.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


def test_socket_belongs_to_the_user_and_web_group(units):
    tmp, _, _ = units
    text = open(os.path.join(tmp, "ideaforge-api.socket")).read()
    assert re.search(r"^ListenStream=/run/ideaforge/api\.sock$", text, re.M)
    assert re.search(r"^SocketUser=ideaforge$", text, re.M)
    assert re.search(r"^SocketMode=0660$", text, re.M)


def test_sysusers_and_tmpfiles_create_user_and_runtime_dir(units):
    _, dest, d = units
    lib = dest + d["prefix"] + "/lib"
    root = tempfile.mkdtemp(prefix="ideaforge-root-")
    try:
        os.makedirs(os.path.join(root, "etc"))
        r = subprocess.run(["systemd-sysusers", "--root=" + root,
                            os.path.join(lib, "sysusers.d", "ideaforge.conf")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        passwd = open(os.path.join(root, "etc", "passwd")).read()
        m = re.search(r"^ideaforge:x:(\d+):(\d+):[^:]*:/nonexistent:/usr/sbin/nologin$", passwd,
                      re.M)
        assert m, passwd
        r = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create",
                            os.path.join(lib, "tmpfiles.d", "ideaforge.conf")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        st = os.stat(os.path.join(root, "run", "ideaforge"))
        assert (st.st_uid, st.st_gid) == (int(m.group(1)), int(m.group(2)))
        assert st.st_mode & 0o777 == 0o755
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_agentd_service_is_hardened(units):
    """ideaforge-agentd: the same hardening, its socket in the shared runtime directory with
    the web server's group (nginx connects to it)."""
    tmp, _, _ = units
    text = open(os.path.join(tmp, "ideaforge-agentd.service")).read()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ProtectHome=yes", "CapabilityBoundingSet=", "User=ideaforge",
                 "Group=www-data", "SystemCallFilter=@system-service", "Type=notify",
                 "RuntimeDirectory=ideaforge", "RuntimeDirectoryPreserve=yes"):
        assert re.search("^" + re.escape(line) + "$", text, re.M), line
    assert re.search(r"^ExecStart=.*--agentd_listen=unix:/run/ideaforge/agentd\.sock$", text,
                     re.M)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        "./ideaforge-agentd.service"], cwd=tmp, capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"Overall exposure level for ideaforge-agentd.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout
