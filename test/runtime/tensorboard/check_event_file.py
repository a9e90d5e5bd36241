#!/usr/bin/env python3
"""Reads an event file written by ttt_tensorboard with a reader that shares no code with it.

Usage: check_event_file.py WRITER PROTOC EVENT_PROTO [--require-protobuf]
WRITER is ttt_tensorboard_write_sample. The inline reader (struct framing, a bitwise CRC32C,
a minimal protobuf wire decoder) always runs; when google.protobuf imports (Debian's
python3-protobuf), the file is decoded a second time with classes protoc generates from
EVENT_PROTO, and must import with --require-protobuf. Then truncated and corrupted copies must
be rejected: a torn last record is reported, never silently read.
"""
import glob
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

STEPS = 5


def fail(msg):
    sys.exit("check_event_file: " + msg)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class BadFile(Exception):
    pass


def read_records(blob):
    """Payloads of every record; raises BadFile on a torn record or a CRC mismatch."""
    records, at = [], 0
    while at < len(blob):
        if at + 12 > len(blob):
            raise BadFile(f"torn record header at byte {at}")
        length_bytes = blob[at:at + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", blob[at + 8:at + 12])
        if length_crc != masked(length_bytes):
            raise BadFile(f"length CRC mismatch at byte {at}")
        end = at + 12 + length + 4
        if end > len(blob):
            raise BadFile(f"torn record at byte {at}: needs {end} bytes, file has {len(blob)}")
        payload = blob[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[end - 4:end])
        if data_crc != masked(payload):
            raise BadFile(f"data CRC mismatch at byte {at}")
        records.append(payload)
        at = end
    return records


def fields(buf):
    """(field number, wire type, value) of a protobuf message; only the wire types we need."""
    out, at = [], 0

    def varint():
        nonlocal at
        value, shift = 0, 0
        while True:
            byte = buf[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while at < len(buf):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value = buf[at:at + 8]
            at += 8
        elif wire == 2:
            n = varint()
            value = buf[at:at + n]
            at += n
        elif wire == 5:
            value = buf[at:at + 4]
            at += 4
        else:
            raise BadFile(f"unexpected wire type {wire}")
        out.append((number, wire, value))
    return out


def decode_inline(payload):
    """An Event as (wall_time, step, file_version or None, [(tag, simple_value)])."""
    wall, step, version, values = 0.0, 0, None, []
    for number, wire, value in fields(payload):
        if number == 1 and wire == 1:
            (wall,) = struct.unpack("<d", value)
        elif number == 2 and wire == 0:
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            version = value.decode("utf-8")
        elif number == 5 and wire == 2:
            for vnum, vwire, entry in fields(value):
                if vnum != 1 or vwire != 2:
                    continue
                tag, simple = None, None
                for enum, ewire, item in fields(entry):
                    if enum == 1 and ewire == 2:
                        tag = item.decode("utf-8")
                    elif enum == 2 and ewire == 5:
                        (simple,) = struct.unpack("<f", item)
                values.append((tag, simple))
    return wall, step, version, values


def decode_protobuf(payloads, protoc, proto, workdir):
    subprocess.run([protoc, f"--python_out={workdir}", f"-I{os.path.dirname(proto)}", proto],
                   check=True)
    sys.path.insert(0, workdir)
    import event_pb2  # generated just above

    decoded = []
    for payload in payloads:
        event = event_pb2.Event()
        event.ParseFromString(payload)
        version = event.file_version if event.WhichOneof("what") == "file_version" else None
        values = [(v.tag, v.simple_value) for v in event.summary.value]
        decoded.append((event.wall_time, event.step, version, values))
    return decoded


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected_events():
    events = []
    for step in range(1, STEPS + 1):
        wall = 1.7e9 + step
        for tag, value in (("train/loss", 10.0 / step), ("train/lr", step * 1e-4),
                           ("zero", 0.0), ("neg", -1.5 * step)):
            events.append((wall, step, None, [(tag, f32(value))]))
    return events


def main():
    if len(sys.argv) < 4:
        fail("usage: check_event_file.py WRITER PROTOC EVENT_PROTO [--require-protobuf]")
    writer, protoc, proto = sys.argv[1:4]
    require_protobuf = "--require-protobuf" in sys.argv[4:]

    for data, want in ((bytes(32), 0x8A9136AA), (b"\xff" * 32, 0x62A8AB43),
                       (bytes(range(32)), 0x46DD794E), (bytes(range(31, -1, -1)), 0x113FDB5C)):
        if crc32c(data) != want:
            fail(f"the reader's own CRC32C is wrong: {crc32c(data):#010x} != {want:#010x}")

    with tempfile.TemporaryDirectory() as tmp:
        logdir = os.path.join(tmp, "logs")
        subprocess.run([writer, logdir, str(STEPS)], check=True, stdout=subprocess.DEVNULL)
        files = glob.glob(os.path.join(logdir, "*"))
        if len(files) != 1:
            fail(f"expected one file in {logdir}, found {files}")
        name = os.path.basename(files[0])
        if not re.fullmatch(r"events\.out\.tfevents\.\d+\.[^/]+", name):
            fail(f"file name {name} is not events.out.tfevents.<unix seconds>.<hostname>")
        blob = open(files[0], "rb").read()

        try:
            payloads = read_records(blob)
        except BadFile as err:
            fail(f"{name}: {err}")
        events = [decode_inline(p) for p in payloads]
        first = events[0]
        if first[2] != "brain.Event:2" or first[3]:
            fail(f"first event must carry file_version brain.Event:2 only, got {first}")
        if abs(first[0] - time.time()) > 3600:
            fail(f"first event's wall_time {first[0]} is not now")
        want = expected_events()
        if events[1:] != want:
            for i, (got, exp) in enumerate(zip(events[1:], want)):
                if got != exp:
                    fail(f"event {i + 1}: got {got}, expected {exp}")
            fail(f"{len(events) - 1} scalar events, expected {len(want)}")
        print(f"inline reader: {len(events)} events, tags "
              f"{sorted({v[0] for e in events for v in e[3]})}, steps 1..{STEPS}")

        try:
            import google.protobuf  # noqa: F401
            have_protobuf = True
        except ImportError:
            have_protobuf = False
            if require_protobuf:
                fail("google.protobuf does not import (python3-protobuf)")
            print("python3-protobuf not available: protobuf decoding skipped")
        if have_protobuf:
            decoded = decode_protobuf(payloads, protoc, proto, tmp)
            if decoded != events:
                fail(f"protobuf decoding differs from the inline one: {decoded} vs {events}")
            print(f"protobuf reader ({google.protobuf.__version__}): same {len(decoded)} events")

        # A torn last record: every cut inside the last record must be detected; cuts at record
        # boundaries are whole files with fewer records.
        last_start = len(blob) - (12 + len(payloads[-1]) + 4)
        for cut in range(last_start + 1, len(blob)):
            try:
                read_records(blob[:cut])
            except BadFile:
                continue
            fail(f"file cut at byte {cut} of {len(blob)} was read without error")
        if len(read_records(blob[:last_start])) != len(payloads) - 1:
            fail("file cut at the last record's start should hold all other records")
        # A flipped byte in a payload or a length is a CRC mismatch.
        for at in (last_start + 12, last_start + 2):
            corrupt = bytearray(blob)
            corrupt[at] ^= 0x01
            try:
                read_records(bytes(corrupt))
            except BadFile as err:
                if "CRC" not in str(err) and "torn" not in str(err):
                    fail(f"flipped byte {at}: unexpected error {err}")
                continue
            fail(f"flipped byte {at} was read without error")
        print(f"torn last record detected at all {len(blob) - last_start - 1} cuts; "
              "flipped bytes detected")
    print("check_event_file: OK")


if __name__ == "__main__":
    main()
