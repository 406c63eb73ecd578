#!/usr/bin/env bash
# Prints this machine's in-cache limit for sum_f w*|c-x| (feature-terms per second, all cores).
# Usage: benchmarks/tools/l1_roofline.sh   (OMP_NUM_THREADS limits the cores used)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(mktemp -d)/l1_roofline
gcc -O3 -march=native -fopenmp "$here/l1_roofline.c" -o "$bin"
"$bin"
