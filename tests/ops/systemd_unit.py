#!/usr/bin/env python3
"""Checks the installed systemd unit with systemd-analyze.

  systemd_unit.py verify    `systemd-analyze verify` on the unit installed by
                            `meson install --destdir`: any output on stderr is
                            a failure (verify exits 0 on warnings).
  systemd_unit.py security  `systemd-analyze security --offline=true`: the
                            overall exposure must be at most MAX_EXPOSURE.
  systemd_unit.py content   the directives the deployment relies on are there
                            and every directive of [Service] has a comment.
"""

import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

UNIT = "auth0-importd.service"
MAX_EXPOSURE = 2.0


def verify(dest):
    unit = dest.join(opslib.installed_path("/" + UNIT))
    exe_installed = opslib.installed_path("/bin/auth0-importd")
    exe = dest.join(exe_installed)
    text = open(unit).read()
    if f"ExecStart={exe_installed} " not in text:
        opslib.fail(f"ExecStart does not run the installed {exe_installed}")
    # verify checks that ExecStart's binary exists and is executable: point it
    # at the DESTDIR copy (the unit under test is otherwise unchanged).
    work = tempfile.mkdtemp(prefix="importd-verify-")
    try:
        copy = os.path.join(work, UNIT)
        with open(copy, "w") as f:
            f.write(text.replace(f"ExecStart={exe_installed} ", f"ExecStart={exe} "))
        environ = dict(os.environ)
        args = ["systemd-analyze", "verify"]
        # The Documentation= man page is checked against the DESTDIR copy.
        man = opslib.installed_paths()
        mandirs = {p.split("/man8/")[0] for p in man.values() if "/man8/auth0-importd.8" in p}
        if shutil.which("man") and mandirs:
            environ["MANPATH"] = dest.join(mandirs.pop())
        else:
            print("note: man(1) or the man page missing, not checking Documentation=")
            args.append("--man=no")
        r = opslib.run(args + [copy], env=environ)
        print(r.stdout, end="")
        if r.stderr.strip() or r.returncode != 0:
            opslib.fail(f"systemd-analyze verify (exit {r.returncode}):\n{r.stderr}")
        print(f"systemd-analyze verify {UNIT}: clean")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def security(dest):
    unit = dest.join(opslib.installed_path("/" + UNIT))
    r = opslib.run(["systemd-analyze", "security", "--offline=true",
                    f"--threshold={int(MAX_EXPOSURE * 10)}", "--no-pager", unit])
    out = r.stdout + r.stderr
    print(out)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    if not m:
        opslib.fail("no overall exposure level in systemd-analyze security output")
    exposure = float(m.group(1))
    print(f"exposure: {exposure} (limit {MAX_EXPOSURE})")
    if exposure > MAX_EXPOSURE:
        opslib.fail(f"exposure {exposure} is above {MAX_EXPOSURE}")
    if r.returncode != 0:
        opslib.fail(f"systemd-analyze security exited {r.returncode}")


REQUIRED = [
    "Type=notify",
    "WatchdogSec=",
    "StateDirectory=auth0-importd",
    "StateDirectoryMode=0700",
    "DynamicUser=yes",
    "LoadCredential=auth0-client-secret:",
    "LoadCredential=api-token:",
    "Environment=AUTH0_CLIENT_SECRET_FILE=%d/auth0-client-secret",
    "Environment=IMPORTD_API_TOKEN_FILE=%d/api-token",
    "EnvironmentFile=-/etc/default/auth0-importd",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "ProtectSystem=strict",
    "NoNewPrivileges=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "SystemCallFilter=@system-service",
    "SystemCallArchitectures=native",
    "CapabilityBoundingSet=",
    "UMask=0077",
]


def content(dest):
    installed = opslib.installed_path("/" + UNIT)
    r = opslib.run([opslib.env("MESON"), "introspect", opslib.env("BUILD_ROOT"),
                    "--buildoptions"])
    options = {o["name"]: o["value"] for o in json.loads(r.stdout)}
    # `meson install --prefix /tmp/x` must never write into the system.
    if options["systemdunitdir"] == "":
        want = os.path.join(options["prefix"], "lib/systemd/system", UNIT)
        if installed != want:
            opslib.fail(f"the unit installs to {installed}, not {want}")
    elif installed != os.path.join(options["systemdunitdir"], UNIT):
        opslib.fail(f"the unit installs to {installed}, not under -Dsystemdunitdir")
    print(f"unit installed as {installed}")
    unit = dest.join(installed)
    exe = opslib.installed_path("/bin/auth0-importd")
    lines = open(unit).read().splitlines()
    for want in REQUIRED + [
            f"ExecStart={exe} --config /etc/auth0-importd/auth0-importd.conf"]:
        if not any(line == want or line.startswith(want) for line in lines):
            opslib.fail(f"the unit has no line {want!r}")
    if any("@" in line and re.search(r"@\w+@", line) for line in lines):
        opslib.fail("an @placeholder@ was left unsubstituted")
    # Every directive of [Service] has its own comment right above it.
    section = None
    prev = ""
    for n, line in enumerate(lines, 1):
        if line.startswith("["):
            section = line
        elif section == "[Service]" and re.match(r"^[A-Za-z]+=", line):
            if not prev.startswith("#"):
                opslib.fail(f"line {n} {line!r} has no comment above it")
        prev = line
    example = dest.join(opslib.installed_path("/auth0-importd/auth0-importd.conf.example"))
    if not os.path.isfile(example):
        opslib.fail("the sample config was not installed")
    print(f"{UNIT}: all required directives present and commented")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    modes = {"verify": verify, "security": security, "content": content}
    if mode not in modes:
        opslib.fail(f"usage: {sys.argv[0]} {'|'.join(modes)}")
    with opslib.DestDir() as dest:
        modes[mode](dest)


if __name__ == "__main__":
    main()
