"""Fixtures of the ops suite (tests/ops/): install, systemd units, Kubernetes manifests,
production configs. These tests need a configured build directory (IDEAFORGE_BUILD_DIR,
default build/) but no running stack."""

import os
import shutil
import subprocess
import tempfile

import pytest

from ops_common import BUILD_DIR, make_var


@pytest.fixture(scope="session")
def installed():
    """`make install DESTDIR=<tmp>` of the build; yields (destdir, paths) with the expanded
    installation directories."""
    if not os.path.exists(os.path.join(BUILD_DIR, "Makefile")):
        pytest.fail("no configured build in %s" % BUILD_DIR)
    dest = tempfile.mkdtemp(prefix="ideaforge-destdir-")
    p = subprocess.run(["make", "-s", "-C", BUILD_DIR, "install", "DESTDIR=" + dest],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    paths = {k: make_var(k) for k in ("prefix", "bindir", "sysconfdir", "pkgdatadir",
                                      "systemdsystemunitdir")}
    yield dest, paths
    shutil.rmtree(dest, ignore_errors=True)
