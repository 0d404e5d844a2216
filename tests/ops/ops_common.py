"""Shared helpers of the ops suite (imported by conftest.py and the tests)."""

import os
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("IDEAFORGE_BUILD_DIR", os.path.join(TOP, "build"))


def make_var(name):
    """The value of a variable of the build's Makefile (prefix, bindir, ...), expanded."""
    p = subprocess.run(["make", "-s", "-C", BUILD_DIR, "--no-print-directory", "-f", "Makefile",
                        "-f", "-", "print-var"], input="print-var:\n\t@echo $(%s)\n" % name,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()
