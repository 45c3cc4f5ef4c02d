#!/usr/bin/env python3
"""Starts the real daemon and checks what operations rely on.

  daemon_checks.py metrics        /metrics passes `promtool check metrics`
                                  (after some traffic, so that labelled series
                                  exist), with the Prometheus content type.
  daemon_checks.py sample-config  the installed sample config is accepted as
                                  shipped, and with every commented setting
                                  and tenant section switched on.
  daemon_checks.py systemd        the daemon keeps the unit's side of the
                                  contract (notify, watchdog at half of
                                  WatchdogSec, $STATE_DIRECTORY, credentials).
  daemon_checks.py container      the Dockerfile's runtime ENV and HEALTHCHECK
                                  work with the daemon.

The daemon is run by the end-to-end harness (tests/e2e/harness.py): on
127.0.0.1:0 with its own temporary state directory and a clean environment;
the bound port is read from its "listening on" log line; readiness is polled
on /readyz; it must stop on SIGTERM with exit 0, and its stderr must hold no
sanitizer report.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

# The end-to-end harness (tests/e2e/harness.py, on PYTHONPATH): the daemon on
# 127.0.0.1:0 with its own state directory and a clean environment; start()
# waits for the listening line and /readyz; stop() sends SIGTERM and asserts
# exit 0 and no sanitizer report.
from harness import Daemon, wait_for  # noqa: E402


class SystemdDaemon(Daemon):
    """The daemon as the unit starts it: the state directory from
    $STATE_DIRECTORY (StateDirectory=), not --state-dir, and WATCHDOG_PID set
    to the daemon's own pid (exec keeps the shell's pid, $$)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        i = self.args.index("--state-dir")
        del self.args[i:i + 2]
        os.makedirs(self.state_dir, mode=0o700)
        self.env["STATE_DIRECTORY"] = self.state_dir
        self.args = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'] + self.args


def metrics():
    promtool = shutil.which("promtool")
    if promtool is None:
        opslib.fail("promtool is not installed (Debian package prometheus, scripts/deps.sh)")
    with Daemon() as d:
        # Some traffic first, so that the per-route and per-status series and
        # the import counters have samples.
        d.get("/healthz")
        d.get("/v1/status")
        d.get("/v1/imports")
        d.get("/v1/imports/imp_0000000000000000")
        d.get("/no-such-path")
        d.post("/v1/imports?connection_id=con_A1b2C3d4E5f6G7h8&dry_run=true&wait=5",
               [{"email": "a@example.com"}, {"emial": "b@example.com"}])
        r = d.get("/metrics")
    status, headers, body = r.status, r.headers, r.body
    if status != 200:
        opslib.fail(f"GET /metrics answered {status}")
    ctype = headers.get("content-type", "")
    if not ctype.startswith("text/plain"):
        opslib.fail(f"/metrics Content-Type is {ctype!r}, not text/plain; version=0.0.4")
    text = body.decode("utf-8")
    families = re.findall(r"^# TYPE (\S+) (\S+)", text, re.M)
    print(f"/metrics: {len(text)} bytes, {len(families)} families, "
          f"{sum(1 for line in text.splitlines() if line and not line.startswith('#'))} samples")
    if not families:
        opslib.fail("/metrics has no # TYPE line")
    r = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                       capture_output=True)
    print(f"+ promtool check metrics -> exit {r.returncode}")
    print(r.stdout + r.stderr)
    if r.returncode != 0:
        print(text, file=sys.stderr)
        opslib.fail("promtool check metrics found problems")
    print("promtool check metrics: ok")


def all_settings_on(sample, folder, token):
    """The sample with every commented `key = value` and `[section]` switched
    on (keys already active in their section stay as they are), Auth0
    domains pointed at a closed loopback port so that nothing leaves the
    machine, and the secret files it names created in `folder`."""
    out = []
    section = None
    active = {}
    files = set()
    for line in open(sample).read().splitlines():
        m = re.match(r"^#?\s*\[([a-z0-9_.-]+)\]\s*$", line)
        if m:
            section = m.group(1)
            out.append(f"[{section}]")
            continue
        m = re.match(r"^(#?)([a-z_]+)\s*=\s*(.*)$", line)
        if not m:
            out.append(line)
            continue
        commented, key, value = m.groups()
        keys = active.setdefault(section, set())
        if key in keys:
            out.append(line)
            continue
        if key in ("state_dir", "listen") and commented:
            out.append(line)  # the flags set them for the test
            continue
        keys.add(key)
        if key == "domain":
            value = "http://127.0.0.1:9"
        elif key == "audience":
            value = "http://127.0.0.1:9/api/v2/"
        elif key.endswith("_file"):
            files.add(value)
        out.append(f"{key} = {value}")
    for name in files:
        with open(os.path.join(folder, name), "w") as f:
            f.write(token + "\n")
        os.chmod(os.path.join(folder, name), 0o600)
    path = os.path.join(folder, "all-on.conf")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def sample_config():
    sample = os.path.join(opslib.env("SOURCE_ROOT"), "systemd",
                                 "auth0-importd.conf.example")
    folder = tempfile.mkdtemp(prefix="importd-ops-conf-")
    try:
        # What the systemd unit gives the daemon: the two secrets as files in
        # its credentials directory, named by the environment.
        token = "ops-test-token-0123456789abcdef"
        creds = os.path.join(folder, "credentials")
        os.mkdir(creds, 0o700)
        for name, value in (("api-token", token), ("auth0-client-secret", "ops-test-secret")):
            with open(os.path.join(creds, name), "w") as f:
                f.write(value + "\n")
        unit_env = {"IMPORTD_API_TOKEN_FILE": os.path.join(creds, "api-token"),
                    "AUTH0_CLIENT_SECRET_FILE": os.path.join(creds, "auth0-client-secret")}

        shipped = os.path.join(folder, "auth0-importd.conf")
        shutil.copy(sample, shipped)
        # As shipped it names no tenant, so only the API token applies (a
        # client secret without a tenant domain is a config error, exit 2).
        print("== the sample as shipped, with the unit's API token")
        with Daemon(args=["--config", shipped], token=token,
                    env={"IMPORTD_API_TOKEN_FILE": unit_env["IMPORTD_API_TOKEN_FILE"]}) as d:
            pass

        print("== every setting and tenant of the sample switched on, in the "
              "systemd unit's environment")
        conf = all_settings_on(sample, folder, token)
        print(open(conf).read())
        with Daemon(args=["--config", conf], token=token, env=unit_env) as d:
            status = d.get("/v1/status").status
        if status != 200:
            opslib.fail(f"GET /v1/status with the token answered {status}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("sample config: accepted as shipped and with everything switched on")


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket that records
    (monotonic time, message) pairs."""

    def __init__(self, folder):
        import socket
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except OSError:
                continue
            self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def times(self, field):
        return [t for t, m in self.messages if field in m.split("\n")]

    def close(self):
        self.done = True
        self.thread.join(timeout=2)
        self.sock.close()


def systemd():
    """What the unit relies on, with the service manager played by the test:
    Type=notify (READY=1 once /readyz answers, STOPPING=1 on SIGTERM),
    WatchdogSec= (WATCHDOG=1 at half of WATCHDOG_USEC), StateDirectory=
    ($STATE_DIRECTORY is the state directory), LoadCredential= (the
    secrets read from the files the environment names) and the journal
    (<N> priority prefixes on stderr when JOURNAL_STREAM is set)."""
    watchdog_s = 1.0
    observe_s = 2.2
    folder = tempfile.mkdtemp(prefix="importd-ops-systemd-")
    notify = NotifySocket(folder)
    token = "ops-test-token-0123456789abcdef"
    creds = os.path.join(folder, "credentials")
    os.mkdir(creds, 0o700)
    for name, value in (("api-token", token), ("auth0-client-secret", "ops-test-secret")):
        with open(os.path.join(creds, name), "w") as f:
            f.write(value + "\n")
    conf = os.path.join(folder, "auth0-importd.conf")
    with open(conf, "w") as f:
        f.write("[tenant.default]\ndomain = http://127.0.0.1:9\nclient_id = ops\n")
    # JOURNAL_STREAM: stderr goes to the journal, lines carry <N> priorities.
    env = {"WATCHDOG_USEC": str(int(watchdog_s * 1e6)), "JOURNAL_STREAM": "9:4242",
           "IMPORTD_API_TOKEN_FILE": os.path.join(creds, "api-token"),
           "AUTH0_CLIENT_SECRET_FILE": os.path.join(creds, "auth0-client-secret")}
    problems = []
    d = SystemdDaemon(args=["--config", conf], token=token, env=env,
                      notify_socket=notify.path)
    try:
        d.start()
        if not notify.times("READY=1"):
            problems.append("no READY=1 by the time /readyz answered 200")
        # The token is required (it came from the credential file).
        status = d.get("/v1/status", token=None).status
        if status != 401:
            problems.append(f"/v1/status without the token answered {status}, not 401")
        status = d.get("/v1/status").status
        if status != 200:
            problems.append(f"/v1/status with the token answered {status}")
        # Observe the watchdog for a bounded time.
        start = time.monotonic()
        wait_for(lambda: time.monotonic() - start >= observe_s or d.proc.poll() is not None,
                 observe_s + 1, interval=0.1, what="the watchdog observation")
        state_files = os.listdir(d.state_dir)
        stop_at = time.monotonic()
        d.stop()
        lines = [line for line in d.stderr().splitlines() if line.strip()]
        bare = [line for line in lines if not re.match(r"^<[0-7]>", line)]
        if not lines or bare:
            problems.append(f"stderr lines without a <N> priority under the journal: {bare[:3]}")
    finally:
        d.cleanup()
        notify.close()
        shutil.rmtree(folder, ignore_errors=True)

    pings = [t for t in notify.times("WATCHDOG=1") if t < stop_at]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    print(f"notify messages: {[m for _, m in notify.messages]}")
    print(f"WATCHDOG_USEC={int(watchdog_s * 1e6)}: {len(pings)} pings in "
          f"{observe_s} s, gaps {[round(g, 3) for g in gaps]}")
    if len(pings) < 3:
        problems.append(f"only {len(pings)} WATCHDOG=1 in {observe_s} s "
                        f"with WatchdogSec={watchdog_s}")
    if gaps and max(gaps) > 0.8 * watchdog_s:
        problems.append(f"a watchdog gap of {max(gaps):.3f} s is too close to "
                        f"WatchdogSec={watchdog_s}")
    if gaps and min(gaps) < 0.2 * watchdog_s:
        problems.append(f"watchdog pings {min(gaps):.3f} s apart: far more often than half")
    if not notify.times("STOPPING=1"):
        problems.append("no STOPPING=1 on SIGTERM")
    if not state_files:
        problems.append("nothing written in $STATE_DIRECTORY")
    else:
        print(f"$STATE_DIRECTORY holds {sorted(state_files)}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        opslib.fail(f"{len(problems)} problem(s) with the systemd contract")
    print("systemd contract: notify, watchdog, state directory, credentials and "
          "journal priorities ok")


def container():
    """The runtime stage's settings as the image runs them: its ENV without a
    token is refused (exit 2, a non-loopback listen needs one); with a token
    the daemon serves, and the image's HEALTHCHECK command passes against it
    and fails once it is stopped."""
    import json
    from dockerfile_lint import instructions, stages
    from harness import run_to_exit
    dockerfile = os.path.join(opslib.env("SOURCE_ROOT"), "Dockerfile")
    runtime = stages(instructions(open(dockerfile).read()))[-1][1]
    env = {}
    for kw, args in runtime:
        if kw == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", args))
    health = [a for k, a in runtime if k == "HEALTHCHECK"][-1]
    cmd = json.loads(health[health.index("CMD") + 3:].strip())
    print(f"image ENV: {env}\nHEALTHCHECK: {cmd}")
    listen = env.get("IMPORTD_LISTEN", "")
    if not listen.startswith("0.0.0.0:"):
        opslib.fail(f"the image should listen on all interfaces, not {listen!r}")
    env.pop("IMPORTD_STATE_DIR", None)  # the harness gives its own

    # No token: refused before binding (port 0, so nothing is ever taken).
    code, err = run_to_exit([], env=dict(env, IMPORTD_LISTEN="0.0.0.0:0"))
    print(f"without a token: exit {code}: {err.strip()}")
    if code != 2 or "token" not in err.lower():
        opslib.fail(f"the image's settings without a token should exit 2 naming the token, "
                    f"got {code}: {err}")

    token = "ops-test-token-0123456789abcdef"
    with Daemon(env=env, token=token) as d:
        hc_env = dict(os.environ, IMPORTD_LISTEN=d.address)
        r = subprocess.run(cmd, env=hc_env, capture_output=True, text=True, timeout=10)
        print(f"HEALTHCHECK against the running daemon: exit {r.returncode}")
        if r.returncode != 0:
            opslib.fail(f"HEALTHCHECK failed against a healthy daemon: {r.stdout}{r.stderr}")
    r = subprocess.run(cmd, env=hc_env, capture_output=True, text=True, timeout=10)
    print(f"HEALTHCHECK once stopped: exit {r.returncode}")
    if r.returncode == 0:
        opslib.fail("HEALTHCHECK passes with the daemon stopped")
    print("container settings and health check: ok")


def main():
    modes = {"metrics": metrics, "sample-config": sample_config, "systemd": systemd,
             "container": container}
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in modes:
        opslib.fail(f"usage: {sys.argv[0]} {'|'.join(modes)}")
    modes[mode]()


if __name__ == "__main__":
    main()
