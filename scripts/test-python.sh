#!/usr/bin/env bash
# The Python bindings' tests: a fresh virtualenv, `pip install ./benchkit-py` (maturin builds
# the module and llama.cpp with it, through ccache), then pytest (bench, errors, interrupt,
# stubs checked against the module, synth, replay) and the example notebook.
# BENCHKIT_TEST_MODEL must name the real test model (scripts/test.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
venv=${BENCHKIT_PY_VENV:-target/pyenv}
rm -rf "$venv"
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install ./benchkit-py"[test]"
cd benchkit-py
"../$venv/bin/python" -m pytest -q
