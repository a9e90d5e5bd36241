#!/usr/bin/env bash
# The TTT-Linear 760m recipe on C4 (spec 4.2); see scripts/train_c4.sh for the options.
exec "$(dirname "${BASH_SOURCE[0]}")/train_c4.sh" 760m "$@"
