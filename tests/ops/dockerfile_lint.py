#!/usr/bin/env python3
"""Checks the Dockerfile without a Docker engine:

- dockerfilelint (from the npm registry, installed into tests/ops/node_modules
  by this test; a failed install fails the test) finds no issue;
- its shape: a build stage on debian:12 running scripts/deps.sh, meson and the
  tests; a debian:12-slim runtime stage with a non-root USER, the state
  directory as a VOLUME, a HEALTHCHECK on /healthz, an exec-form ENTRYPOINT;
- the runtime stage installs the Debian package of every shared library the
  installed executables link (NEEDED entries resolved with ldd and
  dpkg -S), so a new dependency cannot be forgotten in the image.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

DOCKERFILELINT_VERSION = "1.8.0"
STATE_DIR = "/var/lib/auth0-importd"
# In every Debian image already (Essential or required by apt).
BASE_PACKAGES = {"libc6", "libgcc-s1"}


def instructions(text):
    """[(KEYWORD, args)] with continuation lines joined, comments dropped."""
    out = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        kw, _, args = full.partition(" ")
        out.append((kw.upper(), args.strip()))
    return out


def stages(instrs):
    """Splits instructions on FROM: [(from_args, [(kw, args)])]."""
    out = []
    for kw, args in instrs:
        if kw == "FROM":
            out.append((args, []))
        elif out:
            out[-1][1].append((kw, args))
    return out


def lint(dockerfile):
    tool = opslib.npm_tool("dockerfilelint", DOCKERFILELINT_VERSION, "dockerfilelint")
    r = opslib.run([tool, "--json", dockerfile])
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        opslib.fail(f"dockerfilelint gave no JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
    issues = [i for f in report.get("files", []) for i in f.get("issues", [])]
    for i in issues:
        print(f"line {i['line']}: {i['category']}: {i['title']}: {i['content']}",
              file=sys.stderr)
    if issues or r.returncode != 0:
        opslib.fail(f"dockerfilelint: {len(issues)} issue(s) (exit {r.returncode})")
    print("dockerfilelint: no issue")


def shape(dockerfile):
    st = stages(instructions(open(dockerfile).read()))
    problems = []
    if len(st) != 2:
        problems.append(f"expected 2 stages, found {len(st)}")
        return problems, [], []
    (build_from, build), (run_from, runtime) = st
    if not re.match(r"^debian:12(\s|$)", build_from) or " AS " not in build_from.upper():
        problems.append(f"build stage must be a named debian:12 stage: FROM {build_from}")
    if not re.match(r"^debian:12(-slim)?$", run_from):
        problems.append(f"runtime stage must be debian:12(-slim): FROM {run_from}")

    build_runs = " ".join(a for k, a in build if k == "RUN")
    for want in ("scripts/deps.sh", "meson setup", "ninja", "meson test", "meson install"):
        if want not in build_runs:
            problems.append(f"build stage does not run {want!r}")

    def last(kw):
        vals = [a for k, a in runtime if k == kw]
        return vals[-1] if vals else None

    user = last("USER")
    if user is None or user.split(":")[0] in ("0", "root"):
        problems.append(f"runtime stage must end as a non-root USER (got {user})")
    volume = last("VOLUME") or ""
    if STATE_DIR not in volume:
        problems.append(f"{STATE_DIR} is not a VOLUME")
    health = last("HEALTHCHECK") or ""
    if "/healthz" not in health:
        problems.append("no HEALTHCHECK on /healthz")
    entry = last("ENTRYPOINT") or ""
    try:
        argv = json.loads(entry)
        if not isinstance(argv, list):
            raise ValueError
        # Built with --prefix=/usr: the daemon is /usr/bin/auth0-importd.
        if "--prefix=/usr " not in build_runs or argv[:1] != ["/usr/bin/auth0-importd"]:
            problems.append(f"ENTRYPOINT {argv} is not the daemon installed with --prefix=/usr")
    except ValueError:
        problems.append(f"ENTRYPOINT must be in exec form (JSON array): {entry}")
    envs = " ".join(a for k, a in runtime if k == "ENV")
    if "IMPORTD_STATE_DIR" not in envs or "IMPORTD_LISTEN" not in envs:
        problems.append("runtime stage does not configure IMPORTD_* by environment")
    if any(k == "COPY" and "--from=build" in a for k, a in runtime) is False:
        problems.append("runtime stage does not copy the build stage's install tree")

    def apt_packages(runs):
        pkgs = []
        for a in runs:
            for m in re.finditer(r"apt-get install ((?:[^&;|])*)", a):
                pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
        return pkgs

    runtime_pkgs = apt_packages(a for k, a in runtime if k == "RUN")
    return problems, runtime_pkgs, build


def needed_packages():
    """{package: [libraries]} for the NEEDED entries of every installed ELF."""
    out = {}
    for src, dst in opslib.installed_paths().items():
        if not os.path.isfile(src) or open(src, "rb").read(4) != b"\x7fELF":
            continue
        r = subprocess.run(["objdump", "-p", src], text=True, capture_output=True)
        # Where the dynamic loader finds each library for this binary.
        ldd = subprocess.run(["ldd", src], text=True, capture_output=True).stdout
        where = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
        for lib in re.findall(r"^\s*NEEDED\s+(\S+)", r.stdout, re.M):
            path = where.get(lib)
            if path is None:
                opslib.fail(f"{dst} needs {lib}, which ldd cannot resolve")
            d = subprocess.run(["dpkg", "-S", os.path.realpath(path)], text=True,
                               capture_output=True)
            if d.returncode != 0:
                d = subprocess.run(["dpkg", "-S", path], text=True, capture_output=True)
            if d.returncode != 0:
                opslib.fail(f"no Debian package owns {path} ({lib}, needed by {dst})")
            pkg = d.stdout.split(":")[0].strip()
            out.setdefault(pkg, set()).add(f"{lib} ({os.path.basename(dst)})")
    return out


def main():
    root = opslib.env("SOURCE_ROOT")
    dockerfile = os.path.join(root, "Dockerfile")
    if not os.path.isfile(os.path.join(root, ".dockerignore")):
        opslib.fail(".dockerignore is missing")

    problems, runtime_pkgs, _ = shape(dockerfile)
    need = needed_packages()
    print("runtime packages installed by the image: " + " ".join(runtime_pkgs))
    print("packages of the libraries the binaries link:")
    for pkg, libs in sorted(need.items()):
        print(f"  {pkg}: {', '.join(sorted(libs))}")
        if pkg not in runtime_pkgs and pkg not in BASE_PACKAGES:
            problems.append(f"runtime stage does not install {pkg} "
                            f"({', '.join(sorted(libs))})")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        opslib.fail(f"{len(problems)} problem(s) in the Dockerfile")
    print("Dockerfile shape and runtime libraries: ok")

    lint(dockerfile)


if __name__ == "__main__":
    main()
