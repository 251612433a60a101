"""Helpers shared by the benchmark scripts in this folder (imported, not run)."""
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    """Runs `cmd`, raises on failure, returns its stdout (stderr passes through)."""
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, **kw).stdout


def cpu_name():
    """The CPU model as /proc/cpuinfo names it (what the docs' tables print as the machine)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
