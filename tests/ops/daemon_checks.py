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

The daemon runs on 127.0.0.1:0 with its own temporary state directory and a
clean environment (no IMPORTD_* / AUTH0_* from the caller); the bound port is
read from its "listening on http://127.0.0.1:PORT" log line; readiness is
polled on /readyz; it must stop on SIGTERM with exit 0, and its stderr must
hold no sanitizer report.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
START_TIMEOUT = 15.0


class Daemon:
    def __init__(self, args, token=None, extra_env=None, systemd=False):
        """systemd=True: the state directory comes from $STATE_DIRECTORY
        (not --state-dir) and WATCHDOG_PID is the daemon's own pid, as under
        the unit."""
        self.state = tempfile.mkdtemp(prefix="importd-ops-state-")
        self.token = token
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("IMPORTD_", "AUTH0_", "STATE_DIRECTORY",
                                    "NOTIFY_SOCKET", "WATCHDOG_"))}
        env.update(extra_env or {})
        argv = [opslib.env("IMPORTD_BIN"), "--listen", "127.0.0.1:0"]
        if systemd:
            env["STATE_DIRECTORY"] = self.state
            # exec keeps the shell's pid: $$ is the daemon's pid.
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'] + argv
        else:
            argv += ["--state-dir", self.state]
        argv += args
        print("+ " + " ".join(argv), flush=True)
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        self.port = None
        self.port_seen = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            sys.stderr.write("daemon: " + line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.port_seen.set()
        self.port_seen.set()

    def stderr(self):
        return "".join(self.lines)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        if not self.port_seen.wait(START_TIMEOUT) or self.port is None:
            self.kill()
            opslib.fail(f"no 'listening on http://127.0.0.1:PORT' line within "
                        f"{START_TIMEOUT} s (exit {self.proc.poll()})")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                opslib.fail(f"the daemon exited {self.proc.returncode} while starting")
            status, _, _ = self.get("/readyz")
            if status == 200:
                return
            time.sleep(0.05)  # polling readiness, bounded by the deadline
        self.kill()
        opslib.fail(f"/readyz not 200 within {START_TIMEOUT} s")

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=body, method=method, headers=headers or {})
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
        except (urllib.error.URLError, ConnectionError):
            return None, {}, b""

    def get(self, path):
        return self.request("GET", path)

    def stop(self):
        """SIGTERM; must exit 0 in time, without a sanitizer report."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            opslib.fail("the daemon did not exit within 15 s of SIGTERM")
        self.reader.join(timeout=5)
        shutil.rmtree(self.state, ignore_errors=True)
        for mark in SANITIZER_MARKS:
            if mark in self.stderr():
                opslib.fail(f"sanitizer report in the daemon's stderr: {mark}")
        if rc != 0:
            opslib.fail(f"the daemon exited {rc} after SIGTERM")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.state, ignore_errors=True)


def metrics():
    promtool = shutil.which("promtool")
    if promtool is None:
        opslib.fail("promtool is not installed (Debian package prometheus, scripts/deps.sh)")
    d = Daemon([])
    try:
        d.wait_ready()
        # Some traffic first, so that the per-route and per-status series and
        # the import counters have samples.
        d.get("/healthz")
        d.get("/v1/status")
        d.get("/v1/imports")
        d.get("/v1/imports/imp_0000000000000000")
        d.get("/no-such-path")
        d.request("POST", "/v1/imports?connection_id=con_A1b2C3d4E5f6G7h8&dry_run=true&wait=5",
                  body=b'[{"email": "a@example.com"}, {"emial": "b@example.com"}]',
                  headers={"Content-Type": "application/json"})
        status, headers, body = d.get("/metrics")
    except BaseException:
        d.kill()
        raise
    d.stop()
    if status != 200:
        opslib.fail(f"GET /metrics answered {status}")
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
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
        d = Daemon(["--config", shipped], token=token,
                   extra_env={"IMPORTD_API_TOKEN_FILE": unit_env["IMPORTD_API_TOKEN_FILE"]})
        d.wait_ready()
        d.stop()

        print("== every setting and tenant of the sample switched on, in the "
              "systemd unit's environment")
        conf = all_settings_on(sample, folder, token)
        print(open(conf).read())
        d = Daemon(["--config", conf], token=token, extra_env=unit_env)
        d.wait_ready()
        status, _, _ = d.request("GET", "/v1/status")
        d.stop()
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
    ($STATE_DIRECTORY is the state directory) and LoadCredential= (the
    secrets read from the files the environment names)."""
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
    env = {"NOTIFY_SOCKET": notify.path,
           "WATCHDOG_USEC": str(int(watchdog_s * 1e6)),
           "IMPORTD_API_TOKEN_FILE": os.path.join(creds, "api-token"),
           "AUTH0_CLIENT_SECRET_FILE": os.path.join(creds, "auth0-client-secret")}
    d = Daemon(["--config", conf], token=token, extra_env=env, systemd=True)
    problems = []
    try:
        d.wait_ready()
        ready = notify.times("READY=1")
        if not ready:
            problems.append("no READY=1 by the time /readyz answered 200")
        # The token is required (it came from the credential file).
        req = urllib.request.Request(f"http://127.0.0.1:{d.port}/v1/status")
        try:
            urllib.request.urlopen(req, timeout=5)
            problems.append("/v1/status answered without the API token")
        except urllib.error.HTTPError as e:
            if e.code != 401:
                problems.append(f"/v1/status without the token answered {e.code}, not 401")
        status, _, _ = d.get("/v1/status")
        if status != 200:
            problems.append(f"/v1/status with the token answered {status}")
        # Observe the watchdog for a bounded time.
        start = time.monotonic()
        while time.monotonic() - start < observe_s:
            if d.proc.poll() is not None:
                break
            time.sleep(0.1)  # observing the watchdog pace, bounded by observe_s
        state_files = os.listdir(d.state)
    except BaseException:
        d.kill()
        notify.close()
        raise
    stop_at = time.monotonic()
    d.stop()
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
    print("systemd contract: notify, watchdog, state directory and credentials ok")


def main():
    modes = {"metrics": metrics, "sample-config": sample_config, "systemd": systemd}
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in modes:
        opslib.fail(f"usage: {sys.argv[0]} {'|'.join(modes)}")
    modes[mode]()


if __name__ == "__main__":
    main()
