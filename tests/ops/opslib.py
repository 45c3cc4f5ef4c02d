"""Helpers shared by the ops tests (suite 'ops').

The tests check the operations deliverables with the real tools: they install
the project into a temporary DESTDIR with `meson install`, run systemd-analyze,
promtool and linters from the npm registry on what was installed or shipped.

Environment (set by tests/ops/meson.build):
  MESON            the meson command
  BUILD_ROOT       the build directory
  SOURCE_ROOT      the source directory
  IMPORTD_BIN      the built daemon
  NODE_TOOLS_DIR   where npm tools are installed (tests/ops/node_modules,
                   git-ignored), one prefix folder per tool and version
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile


def env(name):
    value = os.environ.get(name)
    if not value:
        fail(f"environment variable {name} is not set (run through meson test)")
    return value


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def run(argv, **kw):
    """Runs argv, returns CompletedProcess with text stdout/stderr."""
    print("+ " + " ".join(argv), flush=True)
    return subprocess.run(argv, text=True, capture_output=True, **kw)


def installed_paths():
    """Maps each built or source file to its install path (meson introspect)."""
    r = run([env("MESON"), "introspect", env("BUILD_ROOT"), "--installed"])
    if r.returncode != 0:
        fail(f"meson introspect failed: {r.stderr}")
    return json.loads(r.stdout)


def installed_path(suffix):
    """The install path (without DESTDIR) of the one file ending in suffix."""
    hits = [dst for dst in installed_paths().values() if dst.endswith(suffix)]
    if len(hits) != 1:
        fail(f"expected one installed file ending in {suffix}, found {hits}")
    return hits[0]


class DestDir:
    """`meson install --destdir` into a temporary folder, removed on exit."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="importd-destdir-")
        r = run([env("MESON"), "install", "-C", env("BUILD_ROOT"),
                 "--destdir", self.path, "--no-rebuild", "--quiet"])
        if r.returncode != 0:
            shutil.rmtree(self.path, ignore_errors=True)
            fail(f"meson install failed:\n{r.stdout}\n{r.stderr}")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def join(self, installed):
        """The DESTDIR copy of a file whose install path is `installed`."""
        return os.path.join(self.path, installed.lstrip("/"))


def npm_tool(package, version, binary):
    """Installs package@version from the npm registry into its own prefix
    under NODE_TOOLS_DIR (once) and returns the path of its binary. A failed
    install (no network, registry down) fails the test: never a silent skip."""
    base = env("NODE_TOOLS_DIR")
    folder = os.path.join(base, f"{package.replace('/', '+')}@{version}")
    exe = os.path.join(folder, "node_modules", ".bin", binary)
    done = os.path.join(folder, ".installed")
    os.makedirs(folder, exist_ok=True)
    # Tests run in parallel and two may want the same tool: one installs it,
    # the other waits on the lock and then finds it.
    with open(os.path.join(folder, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done) and os.access(exe, os.X_OK):
            return exe
        npm = shutil.which("npm")
        if npm is None:
            fail("npm is not installed (scripts/deps.sh installs it)")
        r = run([npm, "install", "--prefix", folder, "--no-audit", "--no-fund",
                 "--loglevel=error", "--no-package-lock", f"{package}@{version}"],
                timeout=600)
        if r.returncode != 0 or not os.access(exe, os.X_OK):
            fail(f"cannot install {package}@{version} from the npm registry "
                 f"(network?):\n{r.stdout}\n{r.stderr}")
        open(done, "w").close()
    return exe
