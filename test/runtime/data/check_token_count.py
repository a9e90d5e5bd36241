#!/usr/bin/env python3
"""The embedded sample's token count from ttt's pipeline equals python3-sentencepiece's.

Each document is encoded whole (json.loads of the line, never split at newlines), plus BOS, plus
EOS when the text is non-empty (spec 4.4). Usage: check_token_count.py COUNT_EXE SAMPLE_DIR
"""
import glob
import gzip
import json
import os
import subprocess
import sys

import sentencepiece


def main():
    exe, sample = sys.argv[1], sys.argv[2]
    run = subprocess.run([exe, sample], capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout, run.stderr)
        return 1
    ours = {}
    for line in run.stdout.splitlines():
        name, docs, tokens = line.split()
        ours[name] = (int(docs), int(tokens))
    sp = sentencepiece.SentencePieceProcessor()
    tokenizer = os.environ.get("TTT_TOKENIZER") or os.path.join(
        os.environ.get("TTT_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ttt"),
        "tokenizer", "llama-2", "tokenizer.model")
    sp.Load(tokenizer)
    failed = 0
    total_ours = total_ref = 0
    for path in sorted(glob.glob(os.path.join(sample, "*.json.gz"))):
        name = os.path.basename(path)
        docs = tokens = 0
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                docs += 1
                tokens += 1 + len(sp.EncodeAsIds(text)) + (1 if text else 0)
        total_ours += ours.get(name, (0, 0))[1]
        total_ref += tokens
        status = "ok" if ours.get(name) == (docs, tokens) else "MISMATCH"
        failed += status != "ok"
        print("%s: ttt %s, python3-sentencepiece (%d docs, %d tokens): %s"
              % (name, ours.get(name), docs, tokens, status))
    print("total tokens: ttt %d, python3-sentencepiece %d" % (total_ours, total_ref))
    return 1 if failed or total_ref == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
