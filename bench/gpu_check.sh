#!/usr/bin/env bash
# GPU checks in one go: tests/gpu (hf on CUDA; vLLM and NVDEC where installed), then the
# serving benchmark on CUDA. Run from anywhere on a CUDA machine with vidra's dependencies,
# or with them as wheels in .whl/ at the repo root (installed into /tmp/site, nothing else
# touched). Logs and the JSON report go to $OUT (default: a new temp dir). Both parts always
# run; the exit status is non-zero if either failed.
#
#   EPISODES=32 CONCURRENCY=1,4,16,32 TEST_TIMEOUT=180 DEADLINE=440 bench/gpu_check.sh
# (the defaults: the tests get at most TEST_TIMEOUT s, the benchmark what is left of DEADLINE s
# from the start; it writes its JSON after each concurrency, so a cut-off run keeps what it
# measured. DEVICE=cpu runs the benchmark's part on the CPU, to try the script out.)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    # .whl/fallback/ holds newer copies of small packages the machine may already have:
    # install one only where what is there is older than a carried wheel requires.
    need=$(python3 - <<'EOF'
import re
import sys
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


wheels = {norm(p.name.split("-")[0]): p for p in Path(".whl/fallback").glob("*.whl")}
need = set()
for dist in metadata.distributions(path=["/tmp/site"]):
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or not req.specifier.contains(have, prereleases=True):
            where = "from .whl/fallback" if norm(req.name) in wheels else "NO WHEEL"
            print(f"{dist.metadata['Name']} needs {req}, found {have}: {where}", file=sys.stderr)
            if norm(req.name) in wheels:
                need.add(str(wheels[norm(req.name)]))
print(" ".join(sorted(need)))
EOF
)
    if [ -n "$need" ]; then
        # shellcheck disable=SC2086  # a list of wheel paths
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site $need || exit 2
    fi
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

nvidia-smi || true
python3 - <<'EOF'
import sys
from importlib import metadata

import torch



def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


print("python", sys.version.split()[0], "cuda", torch.version.cuda)
names = ("torch", "transformers", "peft", "accelerate", "numpy", "pydantic", "sqlalchemy", "av",
         "langgraph", "typing_extensions", "anyio", "idna", "certifi")
print(" ".join(f"{n} {version(n)}" for n in names))
print("cuda available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

status=0
timeout "${TEST_TIMEOUT:-180}" python3 -m pytest tests/gpu -v -rs -p no:cacheprovider 2>&1 \
    | tee "$OUT/gpu_tests.log" || status=1
# without a GPU every test is skipped, which pytest counts as success: not here
grep -q "test_hf_on_cuda_generate_matches_score PASSED" "$OUT/gpu_tests.log" || status=1

left=$(( ${DEADLINE:-440} - SECONDS ))
echo "gpu_check: ${left}s left for the benchmark"
timeout "$(( left > 30 ? left : 30 ))" python3 bench/serving.py --device "${DEVICE:-cuda}" \
    --episodes "${EPISODES:-32}" --concurrency "${CONCURRENCY:-1,4,16,32}" \
    --out "$OUT/serving-${DEVICE:-cuda}.json" 2>&1 | tee "$OUT/serving-${DEVICE:-cuda}.log" \
    || status=1

echo "gpu_check: exit $status; logs in $OUT"
exit $status
