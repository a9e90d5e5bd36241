"""Minimal reader/writer of the safetensors file format, written from the published format description.

Layout of a file:
  bytes [0, 8)        N = length of the header, unsigned 64-bit little-endian
  bytes [8, 8 + N)    UTF-8 JSON object. Each key is a tensor name mapping to
                      {"dtype": "F64"|"F32"|"BF16"|"I32"|..., "shape": [...], "data_offsets": [begin, end]};
                      the optional key "__metadata__" maps to a {string: string} object.
                      The writer pads the JSON with spaces so that the data starts 8-byte aligned.
  bytes [8 + N, ...)  the data buffer; a tensor's bytes are buffer[begin:end], row-major, little-endian.

Supported dtypes: F64, F32, BF16, I32. Tensors are returned as torch tensors (BF16 as torch.bfloat16).
The `safetensors` package is deliberately not used: this file is part of an independent oracle.
"""

import json
import struct

import numpy as np
import torch

# dtype name -> (numpy little-endian storage dtype, bytes per element, torch dtype)
# BF16 is stored as raw 16-bit patterns (the top half of an IEEE float32).
_DTYPES = {
    "F64": (np.dtype("<f8"), 8, torch.float64),
    "F32": (np.dtype("<f4"), 4, torch.float32),
    "BF16": (np.dtype("<u2"), 2, torch.bfloat16),
    "I32": (np.dtype("<i4"), 4, torch.int32),
}
_TORCH_TO_NAME = {torch_dtype: name for name, (_, _, torch_dtype) in _DTYPES.items()}


def _tensor_to_bytes(tensor):
    """Row-major little-endian bytes of a CPU tensor, and its safetensors dtype name."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype not in _TORCH_TO_NAME:
        raise ValueError(f"unsupported dtype {tensor.dtype}")
    name = _TORCH_TO_NAME[tensor.dtype]
    storage_dtype = _DTYPES[name][0]
    if tensor.dtype == torch.bfloat16:
        # Reinterpret the 16-bit patterns as int16, then as unsigned little-endian 16-bit words.
        array = tensor.view(torch.int16).numpy().view(np.uint16)
    else:
        array = tensor.numpy()
    return array.astype(storage_dtype, copy=False).tobytes(order="C"), name


def _bytes_to_tensor(raw, dtype_name, shape):
    if dtype_name not in _DTYPES:
        raise ValueError(f"unsupported safetensors dtype {dtype_name!r}")
    storage_dtype, itemsize, torch_dtype = _DTYPES[dtype_name]
    count = 1
    for extent in shape:
        count *= extent
    if len(raw) != count * itemsize:
        raise ValueError(f"byte size {len(raw)} does not match dtype {dtype_name} and shape {shape}")
    array = np.frombuffer(raw, dtype=storage_dtype).astype(storage_dtype.newbyteorder("="))
    if dtype_name == "BF16":
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16).reshape(shape)
    return torch.from_numpy(array.copy()).reshape(shape)


def encode(tensors, metadata=None):
    """Serialize {name: tensor} (and an optional {str: str} metadata dict) to bytes.

    Tensors are laid out in sorted name order, back to back, with no padding between them."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        raw, dtype_name = _tensor_to_bytes(tensors[name])
        header[name] = {
            "dtype": dtype_name,
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((-(8 + len(header_bytes))) % 8)  # data starts 8-byte aligned
    return struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(chunks)


def decode(blob):
    """Parse bytes of a safetensors file into ({name: tensor}, metadata dict)."""
    if len(blob) < 8:
        raise ValueError("file too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise ValueError("header length runs past the end of the file")
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data = memoryview(blob)[8 + header_len:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"tensor {name!r}: data_offsets {begin},{end} outside the data buffer")
        tensors[name] = _bytes_to_tensor(bytes(data[begin:end]), entry["dtype"], list(entry["shape"]))
    return tensors, metadata


def save_file(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(encode(tensors, metadata))


def load_file(path):
    """Returns ({name: tensor}, metadata dict)."""
    with open(path, "rb") as f:
        return decode(f.read())
