"""The Open Inference Protocol's binary tensor data extension (as tritonclient and the KServe SDK send it).

A request or response body is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw bytes
of some tensors, in the order those tensors appear in the JSON. Each such tensor has no `data`; its
`parameters.binary_data_size` says how many of the following bytes are its own. Fixed-size datatypes are laid
out row-major and little-endian (BOOL one byte per element); BYTES elements are each a 4-byte little-endian
length followed by that many bytes.
"""

from __future__ import annotations

import math

import numpy as np

from gyre.serving.schema import RequestError, binary_data_size, tensor_shape_and_datatype

__all__ = ["HEADER_LENGTH", "attach_binary", "decode_tensor", "encode_tensor"]

HEADER_LENGTH = "Inference-Header-Content-Length"
"""Request and response header: the length of the JSON part of a body that carries binary tensors."""

_FIXED: dict[str, np.dtype[np.generic]] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "u1",
        "UINT8": "u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "INT8": "i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}


def decode_tensor(name: str, datatype: str, shape: list[int], raw: memoryview) -> np.ndarray | list[str]:
    """The elements of one input's binary data, flat: a numpy array, or a list of str for BYTES.

    `raw` is exactly the input's `binary_data_size` bytes; anything that does not fit `datatype` and `shape` is a
    RequestError (422) saying what does not fit.
    """
    count = math.prod(shape)
    if datatype == "BYTES":
        return _decode_bytes(name, count, raw)
    dtype = _FIXED[datatype]
    if count * dtype.itemsize != len(raw):
        raise RequestError(
            422,
            f"input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes, "
            f"binary_data_size is {len(raw)}",
        )
    array = np.frombuffer(raw, dtype=dtype)
    # Any non-zero byte is true, as tritonclient writes numpy's bools.
    return array != 0 if datatype == "BOOL" else array


def _decode_bytes(name: str, count: int, raw: memoryview) -> list[str]:
    out: list[str] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise RequestError(422, f"input {name!r}: BYTES element {len(out)} has a truncated length prefix")
        size = int.from_bytes(raw[offset : offset + 4], "little")
        offset += 4
        if offset + size > end:
            raise RequestError(
                422, f"input {name!r}: BYTES element {len(out)} declares {size} bytes, {end - offset} remain"
            )
        try:
            out.append(str(raw[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise RequestError(422, f"input {name!r}: BYTES element {len(out)} is not UTF-8 text") from None
        offset += size
        if len(out) > count:
            break
    if len(out) != count:
        raise RequestError(
            422, f"input {name!r}: binary data holds {len(out)} BYTES elements, the shape needs {count}"
        )
    return out


def encode_tensor(array: np.ndarray) -> bytes:
    """One output's binary data: fixed-size elements little-endian, anything else as BYTES of its text."""
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.uint8).tobytes()
    if kind in "iuf":
        return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    parts: list[bytes] = []
    for value in array.ravel().tolist():
        text = value if type(value) is bytes else str(value).encode()
        parts.append(len(text).to_bytes(4, "little"))
        parts.append(text)
    return b"".join(parts)


def attach_binary(inputs: object, raw: memoryview) -> object:
    """`inputs` with each binary input's `data` decoded from `raw`, the bytes after the JSON header.

    Malformed framing (sizes that overrun the body, or bytes that no input claims) is a 400: the body cannot be
    read as the client meant it. A tensor whose bytes do not fit its datatype and shape is a 422.
    """
    if type(inputs) is not list:
        return inputs
    out: list[object] = []
    offset = 0
    for i, tensor in enumerate(inputs):
        size = binary_data_size(tensor)
        if size is None:
            out.append(tensor)
            continue
        assert isinstance(tensor, dict)
        name = tensor.get("name")
        label = name if type(name) is str else f"#{i}"
        if type(size) is not int or size < 0:
            raise RequestError(400, f"input {label!r}: binary_data_size must be a non-negative integer")
        if offset + size > len(raw):
            raise RequestError(
                400,
                f"input {label!r}: binary_data_size {size} overruns the body "
                f"({len(raw) - offset} binary bytes left)",
            )
        if "data" in tensor:
            raise RequestError(422, f"input {label!r} has both data and binary_data_size")
        shape, datatype = tensor_shape_and_datatype(label, tensor)
        out.append({**tensor, "data": decode_tensor(label, datatype, shape, raw[offset : offset + size])})
        offset += size
    if offset != len(raw):
        raise RequestError(
            400, f"{len(raw) - offset} bytes of binary data follow the JSON header that no input claims"
        )
    return out
