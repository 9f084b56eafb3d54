#!/usr/bin/env bash
# Checks to run on a CUDA machine (no network; torch with CUDA, nvcc, 16 cores), from the
# repository root:
#
#   benchmarks/device_check.sh                 # every section, in order
#   benchmarks/device_check.sh build kmer_tests  # only these
#
# Everything (logs, JSON, summary.txt) goes to $OUT (default ./device_out). The whole run is
# kept under GULM_DEVICE_BUDGET_S seconds (default 480); each section has its own timeout and
# a section that fails does not stop the next ones, so one run reports as much as it can.
# The exit status is 1 when any section failed, timed out or was skipped for lack of time.
#
# To add checks, write a sec_<name> function below and add <name> to SECTIONS with its time
# limit.
set -u -o pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
BUDGET_S="${GULM_DEVICE_BUDGET_S:-480}"
START_S=$(date +%s)
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
FAILED=0

# name:limit_s, run in this order
SECTIONS=(env:30 build:240 cuda_tests:150 kmer_bench:60 lstm_bench:150)

log() { echo "[device_check $(date +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }

sec_env() {
  nvidia-smi || true
  nvcc --version || true
  "$PY" - <<'EOF'
import importlib, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for mod in ("numpy", "pytest", "hypothesis", "pybind11", "ninja"):
    try:
        m = importlib.import_module(mod)
        print(mod, getattr(m, "__version__", "?"))
    except ImportError:
        print(mod, "MISSING")
EOF
}

sec_build() {
  # sm_90 only (H100/H200): a fraction of the compile time of every arch torch knows.
  GULM_FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-16}" \
    "$PY" setup.py build_ext --inplace &&
    PYTHONPATH="$PWD" "$PY" -c "import gulm; from gulm import _ext; print('with_cuda', _ext.HAS_CUDA_KERNELS); assert _ext.HAS_CUDA_KERNELS"
}

sec_cuda_tests() {
  # -m cuda over the whole suite (k-mer and LSTM kernels vs their references and the CPU op);
  # modules that cannot be imported here (e.g. without pyfaidx) are reported but do not stop
  # the CUDA tests. Then a quick CPU pass of the k-mer ops.
  PYTHONPATH="$PWD" "$PY" -m pytest -m cuda tests -q -rs --continue-on-collection-errors \
    --junitxml="$OUT/cuda_junit.xml" -p no:cacheprovider
  local rc=$?
  PYTHONPATH="$PWD" "$PY" -m pytest tests/ops/test_kmer.py -q -x -m "not slow" -p no:cacheprovider \
    --junitxml="$OUT/kmer_cpu_junit.xml" || rc=1
  return $rc
}

sec_kmer_bench() {
  PYTHONPATH="$PWD" "$PY" benchmarks/bench_kmer_gpu.py --bp "${GULM_BENCH_GPU_BP:-1e9}" \
    --json "$OUT/kmer_gpu.json" | tee "$OUT/kmer_gpu.md"
}

sec_lstm_bench() {
  # fused LSTM vs cuDNN nn.LSTM + WeightDropout (train, B 64/256, fp32/bf16) and scan-style
  # inference on 150 bp windows (B 256/1024)
  PYTHONPATH="$PWD" "$PY" benchmarks/bench_lstm.py --rounds "${GULM_BENCH_ROUNDS:-10}" \
    --device cuda | tee "$OUT/lstm_gpu.md"
}

run_section() {
  local name="$1" limit="$2"
  local left=$((BUDGET_S - ($(date +%s) - START_S)))
  if ((left < 10)); then
    log "$name: SKIPPED (budget of ${BUDGET_S}s spent)"
    FAILED=$((FAILED + 1))
    return
  fi
  ((limit > left)) && limit=$left
  log "$name: start (limit ${limit}s)"
  local t0=$(date +%s)
  # a child bash (exported functions) that timeout can stop as a whole
  timeout --kill-after=10 "$limit" bash -c "sec_$name" >"$OUT/$name.log" 2>&1
  local rc=$?
  local status=ok
  ((rc == 124 || rc == 137)) && status="TIMEOUT"
  ((rc != 0)) && [[ $status == ok ]] && status="FAILED rc=$rc"
  ((rc != 0)) && FAILED=$((FAILED + 1))
  log "$name: $status in $(($(date +%s) - t0))s (log: $OUT/$name.log)"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
}

export PY OUT
export -f $(compgen -A function sec_)

wanted=("$@")
for entry in "${SECTIONS[@]}"; do
  name="${entry%%:*}"
  limit="${entry##*:}"
  if ((${#wanted[@]})) && [[ ! " ${wanted[*]} " == *" $name "* ]]; then
    continue
  fi
  run_section "$name" "$limit"
done
log "done in $(($(date +%s) - START_S))s, $FAILED section(s) failed; results in $OUT"
exit $((FAILED > 0))
