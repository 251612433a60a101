#!/usr/bin/env bash
# Runs `benchkit placement` inside a virtme-ng VM booted on a kernel that has sched_ext, so
# that scheduler arms (scx_lavd, scx_rusty, ...) attach for real. Not run in CI: it needs a
# kernel image you provide and KVM. The VM sees this machine's root filesystem (read-only,
# with the repository writable), so the scx binaries and the model come from here.
#
#   scripts/placement-vm.sh KERNEL_IMAGE [placement arguments...]
#
# KERNEL_IMAGE: a bzImage built with CONFIG_SCHED_CLASS_EXT=y (and CONFIG_BPF_SYSCALL,
#   CONFIG_BPF_JIT, CONFIG_DEBUG_INFO_BTF), e.g. arch/x86/boot/bzImage of a kernel >= 6.12.
# Without placement arguments it compares the default scheduler with scx_lavd and scx_rusty
# (each must be in PATH) on a pp/tg bench of the test model (scripts/fetch-test-model.sh).
# Needs: qemu-system-x86 (apt) and virtme-ng (pip).
# Environment: VNG (the vng command; default: vng, from `pip install virtme-ng`),
#   VM_CPUS (default 4), VM_MEMORY (default 8G), OUT (default target/placement-vm).
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=${1:?usage: scripts/placement-vm.sh KERNEL_IMAGE [placement arguments...]}
shift
vng=${VNG:-vng}
command -v "$vng" >/dev/null || { echo "placement-vm: $vng not found: pip install virtme-ng" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "placement-vm: qemu not found: apt-get install qemu-system-x86" >&2; exit 1; }
[ -r /dev/kvm ] || echo "placement-vm: /dev/kvm is not usable: the VM will be slow (TCG)" >&2
[ -x target/release/benchkit ] || cargo build --release --bin benchkit
out=${OUT:-target/placement-vm}
mkdir -p "$out"
if [ $# -eq 0 ]; then
  model=${BENCHKIT_TEST_MODEL:-models/gemma-3-270m-q4_k_m.gguf}
  set -- --arm default --arm "lavd:scheduler=scx_lavd" --arm "rusty:scheduler=scx_rusty" \
    --rounds 5 --seed 1 --json "$out/placement.json" --jsonl "$out/trials.jsonl" \
    -- bench -m "$model" -p 512 -n 128 -t "${VM_CPUS:-4}"
fi
# Arguments quoted for the guest's shell.
args=$(printf '%q ' "$@")
exec "$vng" --run "$kernel" --user root --cpus "${VM_CPUS:-4}" --memory "${VM_MEMORY:-8G}" \
  --rwdir "$PWD" \
  --exec "cd $(printf '%q' "$PWD") && cat /sys/kernel/sched_ext/state && target/release/benchkit placement $args"
