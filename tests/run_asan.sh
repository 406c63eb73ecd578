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
LD_PRELOAD="$asan $(gcc -print-file-name=libstdc++.so.6)" ASAN_OPTIONS=detect_leaks=0 \
  "$python" - "$repo/tests/test_dtw.py" "$work" <<'PY'
import sys

test_file, work = sys.argv[1:]
# An editable install's import hook would load the installed sktdtw: use the sanitised copy.
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("_editable_skbc_")]
sys.path.insert(0, work)
import sktdtw._core  # noqa: E402

if not sktdtw._core.__file__.startswith(work):
    sys.exit(f"run_asan: loaded {sktdtw._core.__file__}, not the sanitised build")
import pytest  # noqa: E402

# --capture=sys: an ASan report goes to file descriptor 2 and must reach the log.
sys.exit(pytest.main([test_file, "-q", "-p", "no:cacheprovider", "--capture=sys", f"--rootdir={work}"]))
PY
