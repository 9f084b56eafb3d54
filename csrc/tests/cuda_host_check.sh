#!/usr/bin/env bash
# Host-compiler syntax check of the CUDA bindings (csrc/torch/cuda/*.cpp) on a machine without
# a GPU or a CUDA build of torch: g++ -fsyntax-only against torch's headers and the CUDA
# toolkit's. The CPU wheel of torch ships ATen/cuda and c10/cuda headers but not the generated
# c10/cuda/impl/cuda_cmake_macros.h, so a stub of it is written to a temporary folder.
# (Kernels: `make nvcc-check`.)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
CUDA_INC="${CUDA_HOME:-/usr/local/cuda}/include"
TORCH_DIR=$("$PY" -c "import torch, os; print(os.path.dirname(torch.__file__))")
PY_INC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
STUB=$(mktemp -d)
trap 'rm -rf "$STUB"' EXIT
if [[ ! -e "$TORCH_DIR/include/c10/cuda/impl/cuda_cmake_macros.h" ]]; then
  mkdir -p "$STUB/c10/cuda/impl"
  printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$STUB/c10/cuda/impl/cuda_cmake_macros.h"
fi
for f in csrc/torch/cuda/*.cpp; do
  echo "g++ -fsyntax-only $f"
  "${CXX:-g++}" -std=c++17 -fsyntax-only -Wall -DGULM_WITH_CUDA -Icsrc/include -Icsrc/torch \
    -isystem "$TORCH_DIR/include" -isystem "$TORCH_DIR/include/torch/csrc/api/include" -isystem "$STUB" \
    -isystem "$PY_INC" -isystem "$CUDA_INC" "$f"
done
echo "CUDA bindings: syntax OK"
