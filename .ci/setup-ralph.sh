#!/usr/bin/env bash
# Install Ralph (a real xAPI Learning Record Store) into its own virtualenv for the LRS tests.
#
# Ralph pins its own dependencies (pydantic, fastapi ...), so it lives apart from the
# jacmon virtualenv. Idempotent: a venv whose `ralph` already imports is left alone.
#
#   RALPH_VENV      where the venv goes (default: .ci/.ralph-venv beside this script)
#   RALPH_VERSION   ralph-malph version to install (default below)
#   RALPH_PYTHON    interpreter for the venv (default: python3)
# tests/lrs_fixtures.py finds the venv through the same RALPH_VENV default.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RALPH_VENV:-$here/.ralph-venv}"
version="${RALPH_VERSION:-5.1.0}"
python="${RALPH_PYTHON:-python3}"

if [ -x "$venv/bin/ralph" ] && RALPH_RUNSERVER_BACKEND=fs "$venv/bin/python" -c "import ralph.api, requests" 2>/dev/null; then
    echo "ralph: already installed in $venv (ralph-malph $("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('ralph-malph'))"))"
    exit 0
fi

echo "ralph: installing ralph-malph[lrs]==$version into $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# requests: Ralph's CLI imports it, but the [lrs] extra does not pull it in.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ralph-malph[lrs]==$version" requests
RALPH_RUNSERVER_BACKEND=fs "$venv/bin/python" -c "import ralph.api, requests"
echo "ralph: ready (ralph-malph $("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('ralph-malph'))"))"
