# auth0-importd in a container: build and test on Debian 12, run on Debian 12
# slim with only the runtime libraries, as an unprivileged user.
#
#   docker build -t auth0-importd .
#   docker run -d --name importd -p 127.0.0.1:8484:8484 \
#     -v "$PWD/secrets:/run/secrets:ro" \
#     -e AUTH0_DOMAIN=example.eu.auth0.com -e AUTH0_CLIENT_ID=... \
#     -e AUTH0_CLIENT_SECRET_FILE=/run/secrets/auth0-client-secret \
#     -e IMPORTD_API_TOKEN_FILE=/run/secrets/api-token \
#     -v importd-state:/var/lib/auth0-importd auth0-importd
#
# The daemon listens on 0.0.0.0:8484 inside the container, which needs a
# control-API token (IMPORTD_API_TOKEN_FILE or IMPORTD_API_TOKEN): without
# one it refuses to start (exit 2). The secret files must be readable by uid
# 10001. Configuration is by environment
# (IMPORTD_*, AUTH0_*; see auth0-importd(8)); a config file can be mounted and
# named with `--config FILE` after the image name.

# --- build: the README's commands (scripts/deps.sh, meson, the test suite) --
FROM debian:12 AS build
WORKDIR /src
# The toolchain first, so that a source change does not reinstall it.
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Build with -Werror and run the unit, e2e and lint suites (the ops suite
# checks the deliverables on a build host with systemd and npm, not the
# binary), then install into /out with the paths of the runtime image.
RUN meson setup build -Dwerror=true -Dbuildtype=release --prefix=/usr --sysconfdir=/etc \
      -Dsystemdunitdir=/usr/lib/systemd/system \
 && ninja -C build \
 && meson test -C build --print-errorlogs --no-suite ops --no-suite fuzz \
 && meson install -C build --destdir /out --no-rebuild

# --- runtime: Debian 12 slim, the shared libraries and nothing else ---------
FROM debian:12-slim
# The libraries the binaries link (tests/ops/dockerfile_lint.py checks this
# list against them), CA certificates for HTTPS to Auth0, curl for the
# health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libuv1 libjson-c5 libcurl4 libsqlite3-0 libsystemd0 zlib1g \
      libinih1 libjq1 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
# An unprivileged user that owns only the state directory (mode 0700).
RUN groupadd --system --gid 10001 auth0-importd \
 && useradd --system --uid 10001 --gid auth0-importd --no-create-home \
      --home-dir /var/lib/auth0-importd --shell /usr/sbin/nologin auth0-importd \
 && install -d -m 0700 -o auth0-importd -g auth0-importd /var/lib/auth0-importd
ENV IMPORTD_LISTEN=0.0.0.0:8484 \
    IMPORTD_STATE_DIR=/var/lib/auth0-importd \
    IMPORTD_LOG_LEVEL=info
# The durable queue, spooled uploads and chunk files: keep them across
# container replacements.
VOLUME ["/var/lib/auth0-importd"]
EXPOSE 8484
USER 10001:10001
# /healthz needs no token; the port follows IMPORTD_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["sh", "-c", "curl -fsS --max-time 4 \"http://127.0.0.1:${IMPORTD_LISTEN##*:}/healthz\" >/dev/null || exit 1"]
# Exec form: the daemon is PID 1 and gets SIGTERM itself (it stops intake,
# lets in-flight Auth0 calls finish within shutdown_timeout and exits 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/auth0-importd"]
CMD []
