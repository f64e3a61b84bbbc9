#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v keytool >/dev/null || need_apt+=(default-jre-headless)
# javac and Debian's BouncyCastle and JavaMail jars: the Java AS2 partner (tests/interop/java).
command -v javac >/dev/null || need_apt+=(default-jdk-headless)
for pkg in libbcprov-java libbcpkix-java libbcutil-java libbcmail-java libmail-java libactivation-java; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -e /usr/include/openssl/cms.h ] || need_apt+=(libssl-dev)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v puttygen >/dev/null || need_apt+=(putty-tools)
command -v node >/dev/null || need_apt+=(nodejs npm)
# The power-loss test reads the order of mftg serve's fsyncs and unlinks off strace.
command -v strace >/dev/null || need_apt+=(strace)
# The console's browser test: headless Chromium and its WebDriver, from Debian.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done

VENV=.venv
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum tests/requirements.txt tests/interop/fix_oscrypto.py tests/interop/fix_moto.py | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  "$VENV/bin/python" tests/interop/fix_oscrypto.py
  "$VENV/bin/python" tests/interop/fix_moto.py
  echo "$want" > "$STAMP"
fi
"$VENV/bin/python" -c "import pyas2lib, moto.server, selenium, prometheus_client" || { echo "bootstrap: pyas2lib, moto, selenium or prometheus_client does not import" >&2; exit 1; }
# The CDK app's packages, exactly as package-lock.json has them (aws-cdk-lib needs Node.js 20+).
node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' \
  || { echo "bootstrap: Node.js 20 or newer is needed for the CDK app (found $(node --version))" >&2; exit 1; }
CDK=infra/cdk
want_npm=$(sha256sum "$CDK/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$CDK/node_modules/.mftg-lock.sha256" 2>/dev/null)" != "$want_npm" ]; then
  (cd "$CDK" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want_npm" > "$CDK/node_modules/.mftg-lock.sha256"
fi
echo "bootstrap: ok"
