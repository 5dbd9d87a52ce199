#!/usr/bin/env bash
# Installs every Debian package t2v needs to build and test. Idempotent and quiet;
# works as root or through sudo. Usage: ./setup.sh [--test-tools]
#   --test-tools  also Slurm (slurm-wlm, munge) and Chromium, which the batch and serve
#                 tests run against (a one-node cluster, the gallery page, the serve page);
#                 if they cannot be installed those tests skip and say so.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libx264-dev ffmpeg
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libsentencepiece-dev libcli11-dev libgtest-dev libgmock-dev
  libopenblas-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libcpp-httplib-dev
  clang libclang-rt-14-dev libomp-dev
)
TEST_PKGS=(slurm-wlm munge chromium)
WITH_TEST_TOOLS=0
for a in "$@"; do
  case "$a" in
    --test-tools) WITH_TEST_TOOLS=1 ;;
    *) echo "setup.sh: unknown option $a (usage: ./setup.sh [--test-tools])" >&2; exit 64 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup.sh: not root and no sudo; run as root or install sudo" >&2; exit 77; fi
fi

missing_of() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${PKGS[@]}")
test_missing=()
[ "$WITH_TEST_TOOLS" = 1 ] && mapfile -t test_missing < <(missing_of "${TEST_PKGS[@]}")

if [ ${#missing[@]} -eq 0 ] && [ ${#test_missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#test_missing[@]} -gt 0 ]; then
  echo "setup: installing test tools: ${test_missing[*]}"
  # Their tests skip without them, so a failure here is a warning, not the end of setup.
  $SUDO apt-get install -y -qq --no-install-recommends "${test_missing[@]}" >/dev/null ||
    echo "setup: warning: could not install ${test_missing[*]}; the Slurm and Chromium tests will skip" >&2
fi
echo "setup: done"
