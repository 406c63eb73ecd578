#!/usr/bin/env bash
# The op's tests against an AddressSanitizer build of the CPU kernels: any out-of-bounds read
# or write in compiled code fails the run. Usage: tests/run_asan.sh [python]   (run by .ci/run)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-$repo/.venv/bin/python}
asan=$(gcc -print-file-name=libasan.so)
if [ "$asan" = "libasan.so" ]; then
  echo "run_asan: no libasan for this gcc; skipped"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/sktdtw" "$work/"
rm -f "$work"/sktdtw/_core*.so
suffix=$("$python" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
# shellcheck disable=SC2046
g++ -std=c++17 -O1 -g -fsanitize=address -fno-omit-frame-pointer -ffp-contract=fast -fopenmp \
  -shared -fPIC -Wno-psabi $("$python" -m pybind11 --includes) -I"$repo/src_cuda" \
  "$repo/src_cuda/cpu_kernels.cpp" "$repo/src_cuda/bindings.cpp" -o "$work/sktdtw/_core$suffix"
# libstdc++ is preloaded too: ASan must see the real __cxa_throw (Python does not link it).
# --capture=sys: an ASan report goes to file descriptor 2 and must reach the log.
cd "$work"
LD_PRELOAD="$asan $(gcc -print-file-name=libstdc++.so.6)" ASAN_OPTIONS=detect_leaks=0 \
  "$python" -c "import sktdtw._core as c, sys; sys.exit(0 if c.__file__.startswith('$work') else 'run_asan: wrong _core')"
LD_PRELOAD="$asan $(gcc -print-file-name=libstdc++.so.6)" ASAN_OPTIONS=detect_leaks=0 \
  "$python" -m pytest "$repo/tests/test_dtw.py" -q -p no:cacheprovider --capture=sys --rootdir="$work"
