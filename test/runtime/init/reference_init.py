#!/usr/bin/env python3
"""Independent re-implementation of docs/init.md in plain Python, checked against ttt_init.

Usage: reference_init.py PRINTER   (PRINTER = the ttt_init_print executable)
The printer writes one line per element, "name kind std seed index value(hex float)"; this script
recomputes every value and fails on the first that differs in any bit.
"""
import math
import subprocess
import sys

M32 = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32)
    return c0, c1, c2, c3


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def key_of(seed, name):
    k = fnv1a64(name.encode()) ^ seed
    return k & M32, k >> 32


def uniform53(hi, lo):
    return float((((hi << 32) | lo) >> 11) + 1) * 2.0 ** -53


def standard_normal(key, index, attempt):
    r = philox4x32_10((index & M32, attempt, index >> 32, 0), key)
    u1 = uniform53(r[0], r[1])
    u2 = uniform53(r[2], r[3])
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586476925286766559 * u2)


def value(kind, std, key, index):
    if kind == "zeros":
        return 0.0
    if kind == "ones":
        return 1.0
    if kind == "normal":
        return standard_normal(key, index, 0) * std
    attempt = 0
    while True:
        z = standard_normal(key, index, attempt)
        if abs(z) <= 2.0:
            return z * (std / 0.87962566103423978)
        attempt += 1


def main():
    assert philox4x32_10((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    out = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout
    n = 0
    for line in out.splitlines():
        name, kind, std, seed, index, got = line.split()
        want = value(kind, float(std), key_of(int(seed), name), int(index))
        if float.fromhex(got) != want:
            sys.exit(f"{name} {kind} seed {seed} element {index}: C++ {float.fromhex(got)!r}, "
                     f"Python {want!r}")
        n += 1
    if n < 1000:
        sys.exit(f"only {n} values printed")
    print(f"{n} values agree bit for bit")


if __name__ == "__main__":
    main()
