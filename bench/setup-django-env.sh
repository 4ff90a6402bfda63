#!/usr/bin/env bash
# Create the Django Channels benchmark's own virtualenv (bench/.venv-django).
#
# The earlier design's stack (Django + Channels + daphne, in-memory channel
# layer) is a baseline for bench_django_fanout.py only: it is never installed
# into the project's virtualenv. Re-running the script is harmless.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-django"
python="${PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
# Versions current when the benchmark was written; pinned so reruns compare like with like.
"$venv/bin/pip" install --quiet "django>=5.0,<6" "channels>=4.1,<5" "daphne>=4.1,<5"
"$venv/bin/python" -c "import django, channels, daphne; print('django', django.__version__, 'channels', channels.__version__, 'daphne', daphne.__version__)"
