import subprocess
import sys
from pathlib import Path


def test_the_stubs_match_the_native_module():
    allow = Path(__file__).with_name("stubtest-allowlist.txt")
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "benchkit._native", "--allowlist", str(allow)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_type_checks_strictly_against_its_stubs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "-p", "benchkit"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_is_typed():
    import benchkit

    root = Path(benchkit.__file__).parent
    assert (root / "py.typed").exists() and (root / "_native.pyi").exists()
