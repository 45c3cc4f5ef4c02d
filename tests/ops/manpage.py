#!/usr/bin/env python3
"""Checks the man page docs/auth0-importd.8.

  manpage.py render    groff formats it at 80 columns without a warning, and
                       it is installed under <mandir>/man8.
  manpage.py options   its long options and those of `auth0-importd --help`
                       are the same set (and those of its "CHECKING A FILE
                       OFFLINE" section match `auth0-importd check --help`
                       when the binary offers it).
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def man_path():
    return os.path.join(opslib.env("SOURCE_ROOT"), "docs", "auth0-importd.8")


def sections(text):
    """Splits troff source into {section title: body} on .SH lines."""
    out = {}
    title = ""
    for line in text.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            title = m.group(1).strip()
            out[title] = ""
        else:
            out[title] = out.get(title, "") + line + "\n"
    return out


def troff_options(body):
    """Long options in troff source: \\- is a hyphen; font escapes vanish."""
    plain = body.replace("\\-", "-")
    plain = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\c", "", plain)
    return set(OPTION.findall(plain))


def render():
    page = man_path()
    r = opslib.run(["groff", "-t", "-man", "-Tutf8", "-rLL=78n", "-ww", "-z", page])
    if r.returncode != 0 or r.stderr.strip():
        opslib.fail(f"groff warns about {page}:\n{r.stderr}")
    with opslib.DestDir() as dest:
        hits = [p for p in opslib.installed_paths().values() if p.endswith("/man8/auth0-importd.8")]
        if len(hits) != 1 or not os.path.isfile(dest.join(hits[0])):
            opslib.fail(f"the man page is not installed under <mandir>/man8 ({hits})")
        print(f"installed as {hits[0]}")
    print("man page renders cleanly at 80 columns")


def help_options(argv):
    """Long options printed by argv (--help), or None when it is not offered
    (non-zero exit)."""
    try:
        r = subprocess.run(argv, text=True, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        opslib.fail(f"{' '.join(argv)} did not exit within 10 s")
    print(f"+ {' '.join(argv)} -> exit {r.returncode}")
    print(r.stdout + r.stderr)
    if r.returncode != 0:
        return None
    # "--name VALUE" / "--name=VALUE" is how a usage text explains the syntax.
    return set(OPTION.findall(r.stdout + r.stderr)) - {"--name"}


def options():
    secs = sections(open(man_path()).read())
    daemon_man = troff_options(secs.get("OPTIONS", ""))
    check_man = troff_options(secs.get("CHECKING A FILE OFFLINE", ""))
    synopsis = troff_options(secs.get("SYNOPSIS", ""))
    if not daemon_man or not check_man:
        opslib.fail("no options found in OPTIONS or CHECKING A FILE OFFLINE")
    if synopsis != daemon_man | check_man:
        opslib.fail(f"SYNOPSIS and the option sections differ: "
                    f"{sorted(synopsis ^ (daemon_man | check_man))}")

    exe = opslib.env("IMPORTD_BIN")
    daemon_help = help_options([exe, "--help"])
    if daemon_help is None:
        opslib.fail("auth0-importd --help does not exit 0")
    check_help = help_options([exe, "check", "--help"])
    if check_help is not None and daemon_man <= check_help:
        check_help = None  # the daemon's usage again, not check's own

    problems = []
    for opt in sorted(daemon_man - daemon_help):
        problems.append(f"{opt}: in the man page (OPTIONS) but not in --help")
    # --help may mention the check options too; anything else it prints must
    # be documented.
    for opt in sorted(daemon_help - daemon_man - check_man):
        problems.append(f"{opt}: in --help but not in the man page")
    if check_help is not None:
        check_help -= {"--help"}
        for opt in sorted(check_man - check_help):
            problems.append(f"{opt}: in the man page (check) but not in check --help")
        for opt in sorted(check_help - check_man):
            problems.append(f"{opt}: in check --help but not in the man page")
    else:
        print("note: `auth0-importd check --help` is not offered; check options "
              "compared with --help only where it lists them")
    # Every environment variable --help names is documented (X[_FILE] is X
    # and X_FILE).
    r = subprocess.run([exe, "--help"], text=True, capture_output=True, timeout=10)
    env_help = set()
    for name, opt in re.findall(r"\b((?:IMPORTD|AUTH0)_[A-Z0-9_]*[A-Z0-9])(\[_FILE\])?",
                                r.stdout + r.stderr):
        env_help.add(name)
        if opt:
            env_help.add(name + "_FILE")
    env_man = set(re.findall(r"\b(?:IMPORTD|AUTH0)_[A-Z0-9_]*[A-Z0-9]",
                             secs.get("ENVIRONMENT", "").replace("\\-", "-")))
    for name in sorted(env_help - env_man):
        problems.append(f"{name}: in --help but not in the man page's ENVIRONMENT")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        opslib.fail(f"{len(problems)} option(s) differ between the man page and --help")
    print(f"the {len(env_help)} environment variables of --help are in ENVIRONMENT")
    print(f"man page and --help agree on {len(daemon_man)} daemon options"
          + (f" and {len(check_man)} check options" if check_help is not None else ""))


def main():
    modes = {"render": render, "options": options}
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in modes:
        opslib.fail(f"usage: {sys.argv[0]} {'|'.join(modes)}")
    modes[mode]()


if __name__ == "__main__":
    main()
