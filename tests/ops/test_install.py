"""`make install DESTDIR=` places everything where Debian expects it (issue 5, item 4)."""

import glob
import os
import re
import shutil
import subprocess
import tempfile

from ops_common import BUILD_DIR, TOP


def p(dest, path):
    return dest + path


def test_binaries_are_installed_and_run(installed):
    dest, d = installed
    for prog in ("ideaforge-api", "ideaforgectl"):
        f = p(dest, d["bindir"] + "/" + prog)
        assert os.access(f, os.X_OK), f
    out = subprocess.run([p(dest, d["bindir"] + "/ideaforge-api"), "--version"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.startswith("ideaforge-api ")


def test_sample_config_is_installed_and_loads(installed):
    dest, d = installed
    conf = p(dest, d["sysconfdir"] + "/ideaforge/ideaforge.conf")
    with open(conf) as f, open(os.path.join(TOP, "etc", "ideaforge.conf")) as g:
        assert f.read() == g.read()
    r = subprocess.run([p(dest, d["bindir"] + "/ideaforge-api"), "--config", conf,
                        "--print-config"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^pm = static$", r.stdout, re.M)


def test_migrations_and_web_root(installed):
    dest, d = installed
    share = p(dest, d["pkgdatadir"])
    src = sorted(os.path.basename(f) for f in glob.glob(os.path.join(TOP, "sql", "*.sql")))
    assert src and sorted(os.listdir(os.path.join(share, "sql"))) == sorted(src + ["seed"])
    for f in glob.glob(os.path.join(TOP, "sql", "seed", "*.sql")):
        assert os.path.isfile(os.path.join(share, "sql", "seed", os.path.basename(f)))
    for root, _, files in os.walk(os.path.join(TOP, "web")):
        for name in files:
            if name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(root, name), os.path.join(TOP, "web"))
            assert os.path.isfile(os.path.join(share, "web", rel)), rel


def test_nginx_site_and_limits(installed):
    """The installed site is fully rendered and, with the production limits, passes nginx -t."""
    dest, d = installed
    ndir = p(dest, d["pkgdatadir"] + "/nginx")
    site = open(os.path.join(ndir, "ideaforge.conf")).read()
    assert not re.search(r"@[A-Z_]+@", re.sub(r"#.*", "", site)), "unrendered @VAR@"
    assert "fastcgi_pass" in site and d["pkgdatadir"] + "/web" in site
    limits = os.path.join(ndir, "ideaforge-limits.conf")
    assert "zone=ideaforge_login" in open(limits).read()
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "nginx.conf")
        shutil.copy("/etc/nginx/fastcgi_params", tmp)  # the site includes it relatively
        with open(conf, "w") as f:
            f.write("pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n"
                    "include /etc/nginx/mime.types;\ninclude %s;\ninclude %s;\n}\n"
                    % (tmp, limits, os.path.join(ndir, "ideaforge.conf")))
        r = subprocess.run(["nginx", "-t", "-q", "-p", tmp + "/", "-c", conf,
                            "-g", "user root;"], capture_output=True, text=True, timeout=20,
                           cwd="/etc/nginx")
        assert r.returncode == 0, r.stderr


def test_units_sysusers_tmpfiles_and_datastore_configs(installed):
    dest, d = installed
    units = p(dest, d["systemdsystemunitdir"])
    assert sorted(os.listdir(units)) == ["ideaforge-agentd.service", "ideaforge-api.service",
                                         "ideaforge-api.socket"]
    lib = p(dest, d["prefix"] + "/lib")
    assert os.path.isfile(os.path.join(lib, "sysusers.d", "ideaforge.conf"))
    assert os.path.isfile(os.path.join(lib, "tmpfiles.d", "ideaforge.conf"))
    for sub in ("postgresql", "redis"):
        f = p(dest, d["pkgdatadir"] + "/%s/ideaforge.conf" % sub)
        with open(f) as a, open(os.path.join(TOP, "deploy", sub, "ideaforge.conf")) as b:
            assert a.read() == b.read()


def test_uninstall_removes_what_install_placed(installed):
    dest, _ = installed
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["make", "-s", "-C", BUILD_DIR, "install", "DESTDIR=" + tmp],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["make", "-s", "-C", BUILD_DIR, "uninstall", "DESTDIR=" + tmp],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        left = [os.path.join(r_, f) for r_, _, fs in os.walk(tmp) for f in fs]
        assert left == [], left


def test_edge_login_limit_answers_429_json(installed):
    """The installed site + limits in a real nginx (port 19320, no API behind it): logins
    beyond the burst get nginx's 429 with a JSON detail; other paths are not limited."""
    import json
    import time
    import urllib.error
    import urllib.request
    dest, d = installed
    ndir = p(dest, d["pkgdatadir"] + "/nginx")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy("/etc/nginx/fastcgi_params", tmp)
        site = open(os.path.join(ndir, "ideaforge.conf")).read()
        site = re.sub(r"listen \S+;", "listen 127.0.0.1:19320;", site, count=1)
        site = re.sub(r"server unix:\S+;", "server unix:%s/none.sock;" % tmp, site, count=1)
        with open(os.path.join(tmp, "site.conf"), "w") as f:
            f.write(site)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("user root;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\n"
                    "http {\ninclude /etc/nginx/mime.types;\naccess_log off;\n"
                    "client_body_temp_path %s;\nfastcgi_temp_path %s;\n"
                    "include %s;\ninclude %s/site.conf;\n}\n"
                    % (tmp, tmp, tmp, tmp, os.path.join(ndir, "ideaforge-limits.conf"), tmp))
        subprocess.run(["nginx", "-p", tmp + "/", "-c", conf], check=True, timeout=20)
        try:
            def post(path):
                req = urllib.request.Request("http://127.0.0.1:19320" + path, method="POST",
                                             data=b'{"email":"a@b.c","password":"x"}',
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()
            codes = [post("/api/auth/login") for _ in range(30)]
            limited = [b for c, b in codes if c == 429]
            assert [c for c, _ in codes[:21]] == [503] * 21  # burst 20 + the first
            assert len(limited) >= 8, [c for c, _ in codes]
            assert json.loads(limited[0])["detail"].startswith("Too many requests")
            assert post("/api/auth/register")[0] == 503  # another path: not limited
        finally:
            pid = int(open(os.path.join(tmp, "nginx.pid")).read())
            os.kill(pid, 3)
            for _ in range(100):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.05)


def test_every_program_answers_version_and_help():
    """Command-line conventions (issue 15 item 14): --version and -V print the version and
    exit 0 on every program; --help lists the options."""
    import os
    import subprocess
    build = os.environ.get("IDEAFORGE_BUILD_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")
    for prog in ("ideaforge-api", "ideaforgectl", "ideaforge-agentd"):
        for flag in ("--version", "-V"):
            p = subprocess.run([os.path.join(build, prog), flag], capture_output=True,
                               text=True, timeout=10)
            assert p.returncode == 0, (prog, flag, p.stderr)
            assert p.stdout.startswith(prog + " "), (prog, flag, p.stdout)
        h = subprocess.run([os.path.join(build, prog), "--help"], capture_output=True,
                           text=True, timeout=10)
        assert h.returncode == 0 and "usage" in h.stdout.lower(), (prog, h.stdout, h.stderr)
    api_help = subprocess.run([os.path.join(build, "ideaforge-api"), "--help"],
                              capture_output=True, text=True, timeout=10).stdout
    for opt in ("--list-routes", "-t", "-T", "--print-config", "--config"):
        assert opt in api_help, opt
