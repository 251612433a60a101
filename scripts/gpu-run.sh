#!/usr/bin/env bash
# The prepared GPU run (docs/gpu.md): one command, on a machine with an NVIDIA GPU, nvcc, CMake
# and python3, no Rust and no network, over this working tree plus target/gpu-pack (made here by
# scripts/build-cuda.sh && scripts/gpu/pack.sh). It finds cuBLAS (which the binary links
# dynamically) and the driver's libraries, then scripts/gpu/run.py builds llama-bench, generates
# the model and runs the comparisons, writing OUT/log.txt, OUT/summary.md, OUT/results.tar.gz.
#
#   OUT=/tmp/out scripts/gpu-run.sh [run.py flags]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/target/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
pack=target/gpu-pack
for f in benchkit.xz llama.cpp-src.tar.xz reference-cmake-args; do
  [ -f "$pack/$f" ] || { echo "gpu-run: $pack/$f is missing: run scripts/gpu/pack.sh where the binary was built, and carry target/gpu-pack"; exit 1; }
done
(cd "$pack" && sha256sum -c --quiet SHA256SUMS) || { echo "gpu-run: the pack does not match its SHA256SUMS"; exit 1; }

# cuBLAS 13 (libcublas.so.13, libcublasLt.so.13): a system toolkit, else a Python package's
# copy (PyTorch's nvidia-cublas wheel: site-packages/nvidia/cu13/lib).
dirs=()
for d in ${CUDA_HOME:+$CUDA_HOME/lib64} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  dirs+=("$d")
done
while IFS= read -r d; do dirs+=("$d"); done < <(python3 - <<'PY' 2>/dev/null
import importlib.util, os
spec = importlib.util.find_spec("nvidia")
for p in (spec.submodule_search_locations or []) if spec else []:
    for sub in ("cu13/lib", "cublas/lib"):
        print(os.path.join(p, sub))
PY
)
cublas=
for d in "${dirs[@]}"; do
  if [ -e "$d/libcublas.so.13" ] && [ -e "$d/libcublasLt.so.13" ]; then cublas=$d; break; fi
done
if [ -z "$cublas" ]; then
  hit=$(ldconfig -p 2>/dev/null | sed -n 's/.*libcublas\.so\.13 .*=> //p' | head -1)
  [ -n "$hit" ] && cublas=$(dirname "$hit")
fi
[ -n "$cublas" ] || { echo "gpu-run: no libcublas.so.13 found (looked in: ${dirs[*]} and ldconfig); set CUDA_HOME to a CUDA 13 toolkit"; exit 1; }
# The driver's own libraries (libcuda.so.1, which the static runtime loads, and libnvidia-ml.so.1
# for telemetry) where the image mounts them outside the loader's paths.
drv=
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && drv="$drv:$d"; done
export LD_LIBRARY_PATH="$cublas$drv${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "gpu-run: cuBLAS from $cublas; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi -L || echo "gpu-run: nvidia-smi failed"

python3 scripts/gpu/run.py --out "$OUT" "$@"
