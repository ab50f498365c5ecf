#!/usr/bin/env bash
# `make qemu`: builds the image if its inputs changed, boots it in QEMU with a software TPM,
# prints the setup wizard URL and stays in the foreground until Ctrl-C. See image/qemu-run.ts.
#   scripts/qemu.sh [--console]
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx --no-install tsx image/qemu-run.ts "$@"
