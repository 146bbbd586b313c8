#!/usr/bin/env bash
# Make the benchmark-only venv with the Python peer (eventsourcing + its PostgreSQL persistence).
# The project venv never gets eventsourcing; bench/append.py runs bench/peer_eventsourcing.py
# with this venv's python. Usage: bash bench/setup_peer.sh [VENV_DIR] (default .venv-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-bench}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" -m venv "$venv"
echo "*" > "$venv/.gitignore"  # never committed, like Python 3.13+ venvs
"$venv/bin/pip" install --quiet --upgrade pip
# The `postgres` extra brings psycopg 3 with its pool; psycopg[binary] ships libpq in the wheel,
# so nothing is compiled. py-spy is for profiling the benchmarks (bench/README in BENCHMARKS.md).
"$venv/bin/pip" install --quiet 'eventsourcing[postgres]==9.5.*' 'psycopg[binary,pool]>=3.2,<4' \
    'orjson>=3.10,<4' py-spy
"$venv/bin/python" -c "import eventsourcing, psycopg; print('peer venv ready:', \
eventsourcing.__version__ if hasattr(eventsourcing, '__version__') else 'eventsourcing', \
'psycopg', psycopg.__version__, psycopg.pq.__impl__)"
