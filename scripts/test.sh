#!/usr/bin/env bash
# Runs every test of Tutti. The README's second command, and what .ci/run calls.
# Installs what the tests need first: real Segment and RudderStack client libraries into a local virtualenv
# (.venv) and a local npm folder (tests/clients/node_modules), and a real SMTP server (aiosmtpd) into the same
# virtualenv. Nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt -r tests/schemas/requirements.txt \
  -r tests/smtp/requirements.txt
(cd tests/clients && npm install --silent --no-audit --no-fund >/dev/null)

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --all-targets
.venv/bin/python tests/schemas/check_examples.py
