"""Read TensorBoard event files without TensorFlow or tensorboard: scalars and hparams.

An event file is a sequence of TFRecords (``uint64 length, uint32 masked crc32c of the length,
data, uint32 crc of the data``) whose data are ``tensorflow.Event`` protobufs. Only the parts an
import needs are decoded, straight from the protobuf wire format: ``Event.step`` and
``wall_time``, each ``Summary.Value``'s tag with its ``simple_value`` (TF1, torch's SummaryWriter)
or a scalar ``tensor`` (TF2's ``tf.summary``, Keras' TensorBoard callback), and the hparams
plugin's session start (hyperparameters) and end (status).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkb.errors import ModelKBError


class EventFileError(ModelKBError, ValueError):
    """An event file is not readable as TFRecords of ``Event`` protobufs."""


@dataclass
class Scalar:
    """One logged scalar."""

    tag: str
    step: int
    wall_time: float
    value: float


@dataclass
class EventLog:
    """What the event files of one folder hold."""

    scalars: list[Scalar] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    session_status: str | None = None
    wall_times: list[float] = field(default_factory=list)


def is_event_file(name: str) -> bool:
    """The name every writer gives an event file: ``events.out.tfevents.<time>.<host>...``."""
    return name.startswith("events.out.tfevents.") and not name.endswith((".tmp", ".lock"))


def read_event_files(paths: list[Path]) -> EventLog:
    """Every scalar and the hparams of ``paths`` (in name order, the order they were written).

    Raises:
        EventFileError: A file is truncated in the middle of a record header or is not made of
            ``Event`` protobufs (a torn last record, as a killed writer leaves, is skipped).
    """
    log = EventLog()
    for path in sorted(paths, key=lambda p: p.name):
        for event in _records(path):
            _read_event(event, log, path)
    return log


# -- TFRecord framing -------------------------------------------------------------------------------
_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path: Path) -> Iterator[bytes]:
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            header = handle.read(12)
            if len(header) < 12:
                return  # a torn last record: what was written before it is kept
            length, length_crc = struct.unpack("<QI", header)
            if _masked(_crc32c(header[:8])) != length_crc:
                raise EventFileError(
                    f"{path}: not an event file (bad record header at byte {offset})"
                )
            if offset + 12 + length + 4 > size:
                return
            data = handle.read(length)
            handle.read(4)  # the data's crc: the protobuf decoding below rejects garbage
            offset += 12 + length + 4
            yield data


# -- protobuf wire format ---------------------------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)``: ints for varints, bytes for the rest."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
        yield number, wire, value


def _read_event(data: bytes, log: EventLog, path: Path) -> None:
    step, wall_time, summary = 0, 0.0, None
    try:
        for number, wire, value in _fields(data):
            if number == 1 and wire == 1:
                wall_time = struct.unpack("<d", value)[0]
            elif number == 2 and wire == 0:
                step = value if value < 2**63 else value - 2**64
            elif number == 5 and wire == 2:
                summary = value
        if wall_time:
            log.wall_times.append(wall_time)
        if summary is not None:
            for number, wire, value in _fields(summary):
                if number == 1 and wire == 2:
                    _read_value(value, step, wall_time, log)
    except (ValueError, struct.error, UnicodeDecodeError) as err:
        raise EventFileError(f"{path}: a record is not a TensorBoard event ({err})") from err


def _read_value(data: bytes, step: int, wall_time: float, log: EventLog) -> None:
    tag, simple, tensor, plugin, content = "", None, None, "", b""
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            tag = value.decode("utf-8")
        elif number == 2 and wire == 5:
            simple = struct.unpack("<f", value)[0]
        elif number == 8 and wire == 2:
            tensor = value
        elif number == 9 and wire == 2:
            plugin, content = _plugin_data(value)
    if plugin == "hparams":
        _read_hparams(content, log)
        return
    number = simple if simple is not None else _scalar_tensor(tensor) if tensor else None
    if number is not None and plugin in ("", "scalars"):
        log.scalars.append(Scalar(tag, int(step), float(wall_time), number))


def _plugin_data(metadata: bytes) -> tuple[str, bytes]:
    for number, wire, value in _fields(metadata):
        if number == 1 and wire == 2:
            name, content = "", b""
            for inner, inner_wire, inner_value in _fields(value):
                if inner == 1 and inner_wire == 2:
                    name = inner_value.decode("utf-8")
                elif inner == 2 and inner_wire == 2:
                    content = inner_value
            return name, content
    return "", b""


_DTYPES = {1: ("<f", 4, 5), 2: ("<d", 8, 6), 3: ("<i", 4, 7), 9: ("<q", 8, 10), 10: ("<?", 1, 11)}
"""TensorProto dtype -> (struct format, size, the ``*_val`` field holding it)."""


def _scalar_tensor(data: bytes) -> float | None:
    """The value of a rank-0 numeric ``TensorProto``; ``None`` for anything else."""
    dtype, shape, content, values = 0, b"", b"", {}
    for number, wire, value in _fields(data):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 2 and wire == 2:
            shape = value
        elif number == 4 and wire == 2:
            content = value
        elif wire in (0, 1, 2, 5):
            values.setdefault(number, []).append((wire, value))
    if dtype not in _DTYPES or any(n == 2 for n, _, _ in _fields(shape)):  # a dim: not a scalar
        return None
    fmt, size, field_number = _DTYPES[dtype]
    if len(content) == size:
        return _finite(struct.unpack(fmt, content)[0])
    for wire, value in values.get(field_number, []):
        if wire == 2 and len(value) >= size and fmt[-1] in "fd":  # packed
            return _finite(struct.unpack(fmt, value[:size])[0])
        if wire == 2 and fmt[-1] not in "fd":
            return _finite(_varint(value, 0)[0])
        if wire in (1, 5):
            return _finite(struct.unpack(fmt, value)[0])
        if wire == 0:
            return _finite(value)
    return None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _read_hparams(content: bytes, log: EventLog) -> None:
    """``HParamsPluginData``: ``session_start_info`` (3) hparams, ``session_end_info`` (4) status."""
    for number, wire, value in _fields(content):
        if number == 3 and wire == 2:
            for inner, inner_wire, entry in _fields(value):
                if inner == 1 and inner_wire == 2:
                    key, parsed = _map_entry(entry)
                    if key:
                        log.hparams[key] = parsed
        elif number == 4 and wire == 2:
            for inner, inner_wire, status in _fields(value):
                if inner == 1 and inner_wire == 0:
                    log.session_status = {1: "completed", 2: "failed", 3: "interrupted"}.get(
                        status, log.session_status
                    )


def _map_entry(entry: bytes) -> tuple[str, Any]:
    key, parsed = "", None
    for number, wire, value in _fields(entry):
        if number == 1 and wire == 2:
            key = value.decode("utf-8")
        elif number == 2 and wire == 2:
            parsed = _protobuf_value(value)
    return key, parsed


def _protobuf_value(data: bytes) -> Any:
    """``google.protobuf.Value``: a number, a string or a bool (null and containers: ``None``)."""
    for number, wire, value in _fields(data):
        if number == 2 and wire == 1:
            number_value = struct.unpack("<d", value)[0]
            return (
                int(number_value)
                if number_value.is_integer() and abs(number_value) < 2**53
                else number_value
            )
        if number == 3 and wire == 2:
            return value.decode("utf-8")
        if number == 4 and wire == 0:
            return bool(value)
    return None
