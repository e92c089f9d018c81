#!/usr/bin/env bash
# Installs every build, test and runtime dependency of clusterctl.
# Debian/Ubuntu: apt-get.  macOS: Homebrew.  Idempotent: a second run installs nothing.
set -euo pipefail

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libopenmpi-dev openmpi-bin
  libboost-dev libboost-program-options-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libssh-dev libicu-dev nlohmann-json3-dev
  libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev clang-format
  openssh-server openssh-client iproute2 iputils-ping procps python3
  g++-aarch64-linux-gnu qemu-user
)
BREW_PACKAGES=(cmake ninja pkg-config open-mpi boost yaml-cpp spdlog fmt libssh icu4c nlohmann-json curl
  googletest google-benchmark llvm node)

missing_debian() {
  local p
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
  done
}

case "$(uname -s)" in
  Linux)
    if ! command -v apt-get >/dev/null; then
      echo "install-deps: only Debian/Ubuntu (apt-get) is supported on Linux; install the packages listed in $0 by hand" >&2
      exit 1
    fi
    # Node.js runs the API tests with the official OpenAI SDK; keep a newer node if one is there.
    command -v node >/dev/null || DEBIAN_PACKAGES+=(nodejs npm)
    command -v curl >/dev/null || DEBIAN_PACKAGES+=(curl)
    # Headless Chromium runs the web chat page test (tests/api/web_chat.test.mjs); on Debian 12 it
    # takes about 25 s and 510 MB (24 packages) with --no-install-recommends. A chromium or chrome
    # already on PATH will do; CLUSTERCTL_NO_CHROMIUM=1 leaves it out (that test then skips).
    if [ "${CLUSTERCTL_NO_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null &&
       ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
      DEBIAN_PACKAGES+=(chromium)
    fi
    mapfile -t todo < <(missing_debian)
    if [ "${#todo[@]}" -eq 0 ]; then
      echo "install-deps: all ${#DEBIAN_PACKAGES[@]} packages already installed"
      exit 0
    fi
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "install-deps: installing ${todo[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${todo[@]}"
    ;;
  Darwin)
    if ! command -v brew >/dev/null; then
      echo "install-deps: Homebrew is required on macOS (https://brew.sh)" >&2
      exit 1
    fi
    todo=()
    for p in "${BREW_PACKAGES[@]}"; do brew list --versions "$p" >/dev/null 2>&1 || todo+=("$p"); done
    # Headless Chromium for the web chat page test (tests/api/web_chat.test.mjs): Chrome or Chromium
    # already in /Applications will do; else the chromium cask. Not fatal: without it that test skips.
    if [ "${CLUSTERCTL_NO_CHROMIUM:-0}" = 1 ]; then
      echo "install-deps: CLUSTERCTL_NO_CHROMIUM=1: no chromium; the web chat page test will skip"
    elif [ ! -d /Applications/Chromium.app ] && [ ! -d "/Applications/Google Chrome.app" ] &&
         ! brew list --cask chromium >/dev/null 2>&1; then
      brew install --cask chromium ||
        echo "install-deps: the chromium cask did not install; the web chat page test will skip (or install Google Chrome)"
    fi
    if [ "${#todo[@]}" -eq 0 ]; then echo "install-deps: all Homebrew packages already installed"; exit 0; fi
    brew install "${todo[@]}"
    ;;
  *)
    echo "install-deps: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
