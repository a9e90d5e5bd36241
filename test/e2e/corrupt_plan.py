"""Writes four broken copies of a plan: wrong magic, truncated, newer major, one flipped payload byte."""
import sys

good = open(sys.argv[1], "rb").read()
prefix = sys.argv[2]
assert good[:4] == b"TTTP"
open(prefix + ".magic.bin", "wb").write(b"GGUF" + good[4:])
open(prefix + ".truncated.bin", "wb").write(good[: len(good) - 100])
open(prefix + ".newer.bin", "wb").write(good[:4] + (2).to_bytes(2, "little") + good[6:])
flipped = bytearray(good)
flipped[32 + len(good[32:]) // 2] ^= 0x01
open(prefix + ".flipped.bin", "wb").write(bytes(flipped))
