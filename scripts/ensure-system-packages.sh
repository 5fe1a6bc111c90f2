#!/usr/bin/env bash
# System packages the project needs from Debian: libmagic (judging evidence by its bytes) always;
# with --postgres, PostgreSQL's server binaries too (the tests and benchmarks start their own server);
# with --wrk, the wrk load generator (benchmarks); with --browser, Chromium (the report form's browser tests);
# with --build, a C++ compiler and Python's headers (pdqhash, the perceptual hash, builds from source).
# with --redis, Redis's server (the tests start their own, for limits shared between processes);
# with --video, FFmpeg and its development libraries, CMake and pkg-config (the optional `video` extra:
# vpdq, perceptual hashes of video frames, builds from source against FFmpeg; the tests make their
# synthetic videos with the ffmpeg command).
set -euo pipefail
want=()
ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1' || want+=(libmagic1)
for option in "$@"; do
  case "$option" in
    --postgres)
      ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || want+=(postgresql) ;;
    --wrk)
      command -v wrk >/dev/null 2>&1 || want+=(wrk) ;;
    --build)
      command -v g++ >/dev/null 2>&1 || want+=(g++)
      python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || want+=(python3-dev) ;;
    --redis)
      command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || want+=(redis-server) ;;
    --video)
      command -v ffmpeg >/dev/null 2>&1 || want+=(ffmpeg)
      command -v cmake >/dev/null 2>&1 || want+=(cmake)
      command -v pkg-config >/dev/null 2>&1 || want+=(pkg-config)
      command -v g++ >/dev/null 2>&1 || want+=(g++)
      # vpdq's CMake asks pkg-config for each of these libraries (its apt-requirements.txt).
      for library in libavcodec libavformat libavdevice libavutil libswscale libswresample libavfilter; do
        pkg-config --exists "$library" 2>/dev/null || want+=("$library-dev")
      done ;;
    --browser)
      command -v chromium >/dev/null 2>&1 || want+=(chromium fonts-liberation) ;;
    *) echo "unknown option $option" >&2; exit 2 ;;
  esac
done
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "Missing Debian packages: ${want[*]}. Install them (apt-get install ${want[*]}) and try again." >&2
  exit 1
fi
echo "Installing from Debian's packages: ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
# Debian's postgresql package starts a cluster of its own; ours start their own, so stop it.
if [[ " ${want[*]} " == *" postgresql "* ]]; then service postgresql stop >/dev/null 2>&1 || true; fi
if [[ " ${want[*]} " == *" redis-server "* ]]; then service redis-server stop >/dev/null 2>&1 || true; fi
