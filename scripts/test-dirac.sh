#!/usr/bin/env bash
# The DIRAC-marked tests need real DIRAC services and DIRAC's own Python environment. They run
# when tests/dirac/services.sh has started the services; otherwise this says so and skips them.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! tests/dirac/services.sh status >/dev/null 2>&1; then
  echo "SKIPPED: the DIRAC-marked tests (contract and engine against real DIRAC 9.1): services not"
  echo "         started. Run 'tests/dirac/services.sh start' first (about a minute; CI does it)."
  exit 0
fi
eval "$(tests/dirac/services.sh env)"
exec "$DIRAC_TEST_PYTHON" -m pytest -m dirac tests/contract tests/dirac "$@"
