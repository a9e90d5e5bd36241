#!/usr/bin/env python3
"""Reads safetensors files written by ttt_checkpoint with readers that share no code with it.

Usage: check_safetensors.py WRITER ORACLE_MODULE_DIR [--require-oracle]
WRITER is ttt_safetensors_write_sample; ORACLE_MODULE_DIR holds test/oracle/safetensors_io.py.
The inline reader (struct + json, every dtype) always runs and also checks the format's rules
(header size, space padding, contiguous offsets); the oracle module (torch) runs when it imports,
and must import with --require-oracle (CMake passes it when TTT_PYTHON has torch).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

SIZES = {"F64": 8, "F32": 4, "BF16": 2, "I32": 4, "I64": 8}


def fail(msg):
    sys.exit("check_safetensors: " + msg)


def read_inline(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    if n % 8 or (8 + n) > len(blob):
        fail(f"{path}: header size {n} not a multiple of 8 or past the end")
    text = blob[8:8 + n].decode("utf-8")
    if text.rstrip(" ") != text.rstrip() or not text.startswith("{"):
        fail(f"{path}: header must be a JSON object padded with spaces")
    header = json.loads(text)
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = sorted((e["data_offsets"][0], e["data_offsets"][1], k) for k, e in header.items())
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            fail(f"{path}: tensor {name} starts at {begin}, expected {pos}")
        pos = end
    if pos != len(data):
        fail(f"{path}: data buffer {len(data)} bytes, tensors cover {pos}")
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        count = 1
        for d in e["shape"]:
            count *= d
        raw = data[begin:end]
        if len(raw) != count * SIZES[e["dtype"]]:
            fail(f"{path}: tensor {name}: {len(raw)} bytes for {e['dtype']} {e['shape']}")
        if begin % SIZES[e["dtype"]]:
            fail(f"{path}: tensor {name} is not aligned to its element size")
        dt = e["dtype"]
        if dt == "BF16":
            vals = [struct.unpack("<f", struct.pack("<I", h << 16))[0]
                    for (h,) in struct.iter_unpack("<H", raw)]
        else:
            fmt = {"F64": "<d", "F32": "<f", "I32": "<i", "I64": "<q"}[dt]
            vals = [v for (v,) in struct.iter_unpack(fmt, raw)]
        out[name] = (dt, e["shape"], vals)
    return out, meta


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


EXPECTED = {
    "f64": ("F64", [3, 5], [k / 3.0 - 2.0 for k in range(15)]),
    "f32": ("F32", [4, 3], [f32(k * 0.1 - 0.5) for k in range(12)]),
    "bf16": ("BF16", [6], [k - 2.5 for k in range(6)]),
    "i32": ("I32", [5], [k * 1000003 - 2000000 for k in range(5)]),
    "i64": ("I64", [3], [-5, 1 << 40, (1 << 53) + 1]),
}


def check(name, got, want):
    if got != want:
        fail(f"tensor {name}: read {got}, expected {want}")


def main():
    writer, oracle_dir = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([writer, tmp], check=True)
        tensors, meta = read_inline(os.path.join(tmp, "all.safetensors"))
        check("__metadata__", meta, {"format": "pt", "writer": "ttt"})
        check("names", sorted(tensors), sorted(EXPECTED))
        for name, want in EXPECTED.items():
            check(name, tensors[name], want)

        hf, meta = read_inline(os.path.join(tmp, "hf.safetensors"))
        check("hf metadata", meta, {"format": "pt"})
        # ours w [in=2, out=3] = in*3 + out; HF [out, in]. ours k [width=4, channels=2] = j*2 + c;
        # HF [c, 1, j].
        check("w.weight", hf["w.weight"], ("F32", [3, 2], [float(i * 3 + o) for o in range(3)
                                                           for i in range(2)]))
        check("conv.weight", hf["conv.weight"], ("F32", [2, 1, 4], [float(j * 2 + c)
                                                                    for c in range(2)
                                                                    for j in range(4)]))
        print("inline reader: all.safetensors and hf.safetensors agree")

        try:
            sys.path.insert(0, oracle_dir)
            import safetensors_io  # needs torch and numpy
        except ImportError as e:
            if "--require-oracle" in sys.argv[3:]:
                fail(f"cannot import {oracle_dir}/safetensors_io.py: {e}")
            print(f"oracle reader not available ({e}); inline reader only")
            return
        otensors, ometa = safetensors_io.load_file(os.path.join(tmp, "oracle.safetensors"))
        check("oracle __metadata__", ometa, {"format": "pt", "writer": "ttt"})
        check("oracle names", sorted(otensors), ["bf16", "f32", "f64", "i32"])
        for name, t in otensors.items():
            dt, shape, vals = EXPECTED[name]
            check(name + " shape", list(t.shape), shape)
            check(name, t.flatten().tolist(), vals)
        print("test/oracle/safetensors_io.py: oracle.safetensors agrees")


if __name__ == "__main__":
    main()
