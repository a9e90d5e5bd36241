#!/usr/bin/env python3
"""Builds the embedded C4-format sample under data/sample/en from public-domain texts in Debian.

Sources (Debian packages, see scripts/apt-packages.txt):
  r-cran-janeaustenr  six Jane Austen novels, in an R lazy-load database (read here without R)
  dict-jargon         the Jargon File (dictd format, gzip/dictzip)
  dict-devil          Ambrose Bierce's The Devil's Dictionary (dictd format)

Documents: one Austen chapter, or one dictionary entry, per document. The output mirrors C4:
  data/sample/en/c4-train.0000{0..3}-of-00004.json.gz and c4-validation.00000-of-00001.json.gz,
  one JSON object per line {"text", "timestamp", "url"}, gzip without file name or time stamp,
  so the same inputs always give the same bytes. Nothing here is random: documents are dealt to
  shards by a fixed hash of their url.

Usage: scripts/build_sample.py [OUT_DIR]   (default: <repo>/data/sample/en)
"""
import gzip
import hashlib
import io
import json
import os
import re
import struct
import sys
import zlib

AUSTEN_DIR = "/usr/lib/R/site-library/janeaustenr/data"
DICTD_DIR = "/usr/share/dictd"
TRAIN_SHARDS = 4
VALIDATION_EVERY = 20  # one document in 20 (by url hash) goes to validation


# --- a minimal reader for R's XDR serialization, enough for character vectors and lists ---
class RReader:
    NILVALUE, REF, SYM, LIST, CHAR, LGL, INT, REAL, STR, VEC = 254, 255, 1, 2, 9, 10, 13, 14, 16, 19
    SPECIAL_ENVS = {242, 241, 253, 251, 247}

    def __init__(self, data):
        self.d, self.p, self.refs = data, 0, []
        if data[:2] != b"X\n":
            raise ValueError("not an XDR R serialization")
        self.p = 2
        version = self.int()
        self.int(), self.int()
        if version == 3:
            n = self.int()
            self.p += n

    def int(self):
        (v,) = struct.unpack_from(">i", self.d, self.p)
        self.p += 4
        return v

    def item(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == self.NILVALUE or kind in self.SPECIAL_ENVS:
            return None
        if kind == self.REF:
            idx = flags >> 8
            return self.refs[(idx or self.int()) - 1]
        if kind == self.SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == self.LIST:
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return [(tag, car)] + (cdr or [])
        if kind == self.CHAR:
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.p:self.p + n]
            self.p += n
            return s.decode("utf-8" if flags & (1 << 15) == 0 else "latin-1", errors="strict")
        if kind in (self.LGL, self.INT):
            n = self.int()
            v = list(struct.unpack_from(">%di" % n, self.d, self.p))
            self.p += 4 * n
        elif kind == self.REAL:
            n = self.int()
            v = list(struct.unpack_from(">%dd" % n, self.d, self.p))
            self.p += 8 * n
        elif kind in (self.STR, self.VEC):
            n = self.int()
            v = [self.item() for _ in range(n)]
        else:
            raise ValueError("unsupported R type %d" % kind)
        if has_attr:
            attrs = dict(self.item() or [])
            if kind == self.VEC and attrs.get("names"):
                return dict(zip(attrs["names"], v))  # a named list, such as the lazy-load index
        return v


def austen_novels():
    # the .rdx index maps each variable to (offset, length) of a record in the .rdb file: a 4-byte
    # length followed by a zlib-compressed serialization of the object
    index = RReader(gzip.decompress(open(os.path.join(AUSTEN_DIR, "Rdata.rdx"), "rb").read())).item()
    rdb = open(os.path.join(AUSTEN_DIR, "Rdata.rdb"), "rb").read()
    novels = {}
    for name, (offset, length) in index["variables"].items():
        novels[name] = RReader(zlib.decompress(rdb[offset + 4:offset + length])).item()
    return novels


def austen_documents():
    docs = []
    chapter = re.compile(r"^\s*(CHAPTER|Chapter)\s+[0-9IVXLC]+\.?\s*$")
    for novel, lines in sorted(austen_novels().items()):
        if not isinstance(lines, list) or not all(isinstance(x, str) or x is None for x in lines):
            continue
        current, number = [], 0
        def flush():
            text = "\n".join(current).strip()
            # paragraphs are separated by blank lines in the source; keep them, join wrapped lines
            paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
            if paras:
                docs.append(("austen/%s/chapter-%d" % (novel, number), "\n\n".join(paras)))
        for line in lines:
            line = line or ""
            if chapter.match(line):
                flush()
                current, number = [line.strip()], number + 1
            else:
                current.append(line)
        flush()
    return docs


def dictd_documents(name):
    # .index lines: headword \t base64 offset \t base64 length, into the (dictzip) gzip .dict.dz
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    def b64(s):
        v = 0
        for c in s:
            v = v * 64 + alphabet.index(c)
        return v
    body = gzip.decompress(open(os.path.join(DICTD_DIR, name + ".dict.dz"), "rb").read())
    docs = []
    with open(os.path.join(DICTD_DIR, name + ".index"), encoding="utf-8") as f:
        for line in f:
            word, off, length = line.rstrip("\n").split("\t")[:3]
            if word.startswith("00-database") or word.startswith("00database"):
                continue
            text = body[b64(off):b64(off) + b64(length)].decode("utf-8", errors="replace").strip()
            if text:
                slug = re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-") or "entry"
                docs.append(("%s/%s-%d" % (name, slug, b64(off)), text))
    return docs


def bucket(url):
    return int.from_bytes(hashlib.sha256(url.encode()).digest()[:8], "big")


def write_shard(path, docs):
    raw = io.BytesIO()
    # filename='' and mtime=0: no name or time in the gzip header, so the bytes are reproducible
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for i, (url, text) in enumerate(docs):
            # C4's own time stamps look like this; derive one from the position, not the clock
            ts = "2019-04-%02dT%02d:%02d:%02dZ" % (18 + i % 10, i % 24, (i * 7) % 60, (i * 13) % 60)
            record = {"text": text, "timestamp": ts, "url": "https://sample.ttt.invalid/" + url}
            gz.write((json.dumps(record, ensure_ascii=True) + "\n").encode("ascii"))
    with open(path + ".tmp", "wb") as f:
        f.write(raw.getvalue())
    os.replace(path + ".tmp", path)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "data", "sample", "en")
    os.makedirs(out, exist_ok=True)
    docs = austen_documents() + dictd_documents("jargon") + dictd_documents("devil")
    train = [[] for _ in range(TRAIN_SHARDS)]
    validation = []
    for url, text in docs:
        h = bucket(url)
        if h % VALIDATION_EVERY == 0:
            validation.append((url, text))
        else:
            train[(h // VALIDATION_EVERY) % TRAIN_SHARDS].append((url, text))
    for i, shard in enumerate(train):
        write_shard(os.path.join(out, "c4-train.%05d-of-%05d.json.gz" % (i, TRAIN_SHARDS)), shard)
    write_shard(os.path.join(out, "c4-validation.00000-of-00001.json.gz"), validation)
    print("build_sample: %d documents (%d train in %d shards, %d validation) -> %s"
          % (len(docs), sum(map(len, train)), TRAIN_SHARDS, len(validation), out))


if __name__ == "__main__":
    main()
