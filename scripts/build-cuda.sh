#!/usr/bin/env bash
# Builds a CUDA-enabled `benchkit` without a system CUDA toolkit: NVIDIA's compiler, headers and
# libraries come from PyPI wheels (pinned below) installed into a virtualenv under target/, laid
# out as one toolkit root that CMake's FindCUDAToolkit accepts. No GPU or driver is needed to
# build. docs/gpu.md says why the runtime is static, cuBLAS dynamic and the VMM pool off.
#
#   scripts/build-cuda.sh                 # sm_90 (Hopper), portable CPU code -> target/cuda/release/benchkit
#   CUDA_ARCHITECTURES=89 scripts/build-cuda.sh   # any CMake CUDA_ARCHITECTURES list ("86;90")
#   scripts/build-cuda.sh --native        # also tune the CPU code to this machine (binary stays here)
#   scripts/build-cuda.sh --layout-only   # install the wheels and check the toolkit root, no build
#
# Environment: JOBS (parallel compile jobs, default: all cores), NICE (niceness, default 0),
# CUDA_BUILD_TARGET_DIR (default target/cuda), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# CUDA 13.0.x: the oldest CUDA 13 release, so any 13.x driver (r580 and later) runs it.
WHEELS=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink
  nvidia-cuda-crt==13.0.88      # nvcc's crt/ headers
  nvidia-nvvm==13.0.88          # cicc and libdevice (nvcc's front end)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, libcudart_static.a
  nvidia-cuda-cccl==13.0.85     # CUB, Thrust, libcu++ (include/cccl)
  nvidia-cublas==13.0.2.14      # cublas headers, libcublas.so.13, libcublasLt.so.13
)

layout_only=0
native=0
for arg in "$@"; do
  case $arg in
    --layout-only) layout_only=1 ;;
    --native) native=1 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-cuda: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

die() {
  echo "build-cuda: $1" >&2
  [ $# -gt 1 ] && echo "  fix: $2" >&2
  exit 1
}

tk=$repo/target/cuda-toolkit
venv=$tk/venv
root=$tk/root
python=${PYTHON:-python3}

# 1. The wheels, in a virtualenv of their own.
command -v "$python" >/dev/null || die "$python not found." "sudo apt-get install -y python3 python3-venv (or set PYTHON)"
if [ ! -x "$venv/bin/pip" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" 2>/dev/null \
    || die "cannot create a virtualenv with $python." "sudo apt-get install -y python3-venv (Debian/Ubuntu split venv out)"
fi
"$venv/bin/pip" --version >/dev/null 2>&1 || die "the virtualenv's pip does not run." "rm -rf $venv and rerun"
echo "build-cuda: installing ${WHEELS[*]}"
"$venv/bin/pip" install -q --disable-pip-version-check "${WHEELS[@]}" \
  || die "pip could not install the CUDA wheels (above)." \
    "pip needs its package index (network, or a mirror set in pip.conf / PIP_INDEX_URL); or install the CUDA toolkit and build with: CUDA_PATH=/usr/local/cuda cargo build --release --features cuda"
for w in "${WHEELS[@]}"; do
  name=${w%%==*}
  want=${w#*==}
  have=$("$venv/bin/pip" show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  [ "$have" = "$want" ] || die "wheel $name is ${have:-missing}, pinned $want." "rm -rf $venv and rerun"
done

# 2. One toolkit root. The CUDA 13 wheels share site-packages/nvidia/cu13 (bin, include, lib,
# nvvm); a hard-linked copy makes it ours to complete without touching the venv: nvcc.profile
# and FindCUDAToolkit look for lib64/, CMake's find_library wants unversioned libX.so names.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
src=$site/nvidia/cu13
[ -d "$src" ] || die "the wheels left no $src." "the pinned wheels changed layout: check $site/nvidia"
rm -rf "$root"
cp -al "$src" "$root" 2>/dev/null || cp -a "$src" "$root"
ln -s lib "$root/lib64"
for so in cudart cublas cublasLt; do
  real=$(cd "$root/lib" && ls lib$so.so.[0-9]* 2>/dev/null | head -1)
  [ -n "$real" ] && ln -sf "$real" "$root/lib/lib$so.so"
done

# 3. Check the layout: what nvcc and CMake need, with the wheel that brings each piece.
missing=()
need() { [ -e "$root/$1" ] || missing+=("$1 ($2)"); }
need bin/nvcc nvidia-cuda-nvcc
need bin/ptxas nvidia-cuda-nvcc
need bin/fatbinary nvidia-cuda-nvcc
need bin/nvcc.profile nvidia-cuda-nvcc
need nvvm/bin/cicc nvidia-nvvm
need nvvm/libdevice nvidia-nvvm
need include/crt/host_config.h nvidia-cuda-crt
need include/cuda_runtime.h nvidia-cuda-runtime
need include/cccl/cub/cub.cuh nvidia-cuda-cccl
need include/cublas_v2.h nvidia-cublas
need lib64/libcudart_static.a nvidia-cuda-runtime
need lib64/libcudart.so nvidia-cuda-runtime
need lib64/libcublas.so nvidia-cublas
need lib64/libcublasLt.so nvidia-cublas
if [ ${#missing[@]} -gt 0 ]; then
  printf 'build-cuda: the toolkit root %s lacks:\n' "$root" >&2
  printf '  %s\n' "${missing[@]}" >&2
  die "incomplete toolkit layout." "rm -rf $venv and rerun; if it persists, the wheel named above changed its layout"
fi
nvcc_version=$("$root/bin/nvcc" --version 2>&1) || die "nvcc does not run: $nvcc_version" "check $root/bin/nvcc"
release=$(sed -n 's/.*, V\([0-9.]*\).*/\1/p' <<<"$nvcc_version")
echo "build-cuda: toolkit root $root (nvcc $release)"
command -v cmake >/dev/null || die "CMake not found." "sudo apt-get install -y cmake (>= 3.18)"
cmake_version=$(cmake --version | sed -n '1s/cmake version //p')
[ "$(printf '3.18\n%s\n' "$cmake_version" | sort -V | head -1)" = 3.18 ] \
  || die "CMake $cmake_version is too old for ggml-cuda." "pip install --user cmake, or install CMake >= 3.18"
[ $layout_only = 1 ] && exit 0

# 4. The build.
command -v cargo >/dev/null || die "cargo not found." "install Rust (rustup)"
target_dir=${CUDA_BUILD_TARGET_DIR:-$repo/target/cuda}
jobs=${JOBS:-$(nproc)}
features=cuda
if [ $native = 0 ]; then
  # The binary travels (to a GPU machine): x86-64-v3 CPU code (AVX2, FMA, F16C), not this CPU's.
  export LLAMA_SYS_CMAKE_DEFINES="GGML_NATIVE=OFF${LLAMA_SYS_CMAKE_DEFINES:+;$LLAMA_SYS_CMAKE_DEFINES}"
fi
export CUDA_PATH=$root CUDACXX=$root/bin/nvcc
export CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-90}
export CARGO_TARGET_DIR=$target_dir CARGO_BUILD_JOBS=$jobs CMAKE_BUILD_PARALLEL_LEVEL=$jobs LLAMA_SYS_BUILD_JOBS=$jobs
# Where cuBLAS is found when nothing else says: the build's own copy (LD_LIBRARY_PATH wins).
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,$root/lib"
mkdir -p "$target_dir"
timefile=$target_dir/build-time.txt
cmd=(cargo build --release -p benchkit-suite --no-default-features --features "$features" --bin benchkit)
echo "build-cuda: CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES native=$native jobs=$jobs nice=${NICE:-0}: ${cmd[*]}"
start=$(date +%s)
if [ -x /usr/bin/time ]; then
  nice -n "${NICE:-0}" /usr/bin/time -v -o "$timefile.raw" "${cmd[@]}"
  wall=$(($(date +%s) - start))
  user=$(sed -n 's/.*User time (seconds): //p' "$timefile.raw")
  sys=$(sed -n 's/.*System time (seconds): //p' "$timefile.raw")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$timefile.raw")
else
  nice -n "${NICE:-0}" "${cmd[@]}"
  wall=$(($(date +%s) - start))
  # bash's `times`: the second line is the children's "XmY.YYYs XmY.YYYs" (user, system).
  secs() { awk -F'[ms]' '{ printf "%.1f", $1 * 60 + $2 }' <<<"$1"; }
  read -r cu cs < <(times | tail -1)
  user=$(secs "$cu") sys=$(secs "$cs")
  rss=unknown
fi
bin=$target_dir/release/benchkit
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "command: ${cmd[*]}"
  echo "nvcc: $release  CUDA_ARCHITECTURES: $CUDA_ARCHITECTURES  native: $native"
  echo "jobs: $jobs  nice: ${NICE:-0}  cores: $(nproc)  load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "ccache: $(command -v ccache >/dev/null && echo yes || echo no)"
  echo "wall_s: $wall  user_s: $user  sys_s: $sys  max_rss_kb: $rss"
  echo "binary: $bin $(stat -c %s "$bin") bytes"
} | tee "$timefile"
echo "build-cuda: done; try: $bin bench --list-devices"
