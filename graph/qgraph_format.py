"""The ``.qg`` container: fixed preamble, checksummed zstd blocks, JSON header; atomic writing, verified reading.

This module knows bytes, blocks and sections, not quanta: `graph.qgraph_blocks` decides what goes
in each block and `graph.qgraph_io` is the public API. The layout is documented in
docs/qgraph-format.md:

``preamble`` (128 bytes) | ``block 0`` | ``block 1`` | ... | ``header`` (zstd JSON)

The header sits after the blocks so a writer streams blocks to disk as it makes them; the preamble
(rewritten last) says where the header is. A block is a zstd frame of *sections*, each a name, an
"owned rows" count and an Arrow IPC stream (or raw bytes for index pages).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import zstandard

from butler.atomic_files import default_file_mode

from .errors import QuantumGraphFileError

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "DIGEST_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "PREAMBLE_SIZE",
    "BlockKind",
    "Preamble",
    "QgFileReader",
    "QgFileWriter",
    "Section",
    "decode_sections",
    "encode_sections",
]

MAGIC = b"\x89QGRAPH\n"
"""First 8 bytes of every ``.qg`` file (a non-ASCII first byte and a newline catch text-mode mangling)."""

FORMAT_VERSION = (1, 0)
"""(major, minor): a reader reads every minor of its major; a new major is incompatible."""

PREAMBLE_SIZE = 128
"""Bytes of the fixed preamble."""

DIGEST_SIZE = 16
"""Bytes of every blake2b digest in the file."""

_UNIVERSE_NAME_SIZE = 32
# magic, major, minor, universe version, universe name, header offset, header length,
# header raw length, file size, header digest, reserved.
_PREAMBLE_STRUCT = struct.Struct(f"<8sHHI{_UNIVERSE_NAME_SIZE}sQQQQ{DIGEST_SIZE}s16x")
_PREAMBLE_DIGEST_OFFSET = PREAMBLE_SIZE - DIGEST_SIZE
assert _PREAMBLE_STRUCT.size == _PREAMBLE_DIGEST_OFFSET
_SECTION_HEAD = struct.Struct("<HQQ")  # name length, owned rows, data bytes
_ALIGNMENT = 8
_COMPRESSION_LEVEL = 3


class BlockKind:
    """The ``kind`` of a block in the header's block table."""

    GLOBAL = "global"
    """Block 0: init edges, their datasets and records, and an (often empty) section of every table."""
    QUANTA = "quanta"
    """Quanta of one task with their edges, the dataset rows they use and their inputs' records."""
    EXTRAS = "extras"
    """Pruned quanta, and datasets/records no edge refers to (read only for the whole graph)."""
    INDEX = "index"
    """One page of the sorted node-id -> block index (raw bytes, not Arrow)."""


def _digest(data: bytes | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


@dataclass(frozen=True, slots=True)
class Preamble:
    """The fixed 128 bytes at the start of a ``.qg`` file."""

    format_version: tuple[int, int]
    """(major, minor) format version."""
    universe_name: str
    """Name of the dimension universe the graph was built with."""
    universe_version: int
    """Version of that universe."""
    header_offset: int
    """Where the (compressed) JSON header starts."""
    header_length: int
    """Compressed header bytes."""
    header_raw_length: int
    """Header bytes once decompressed."""
    file_size: int
    """Size of the whole file in bytes."""
    header_digest: bytes
    """blake2b digest of the compressed header (which holds every block's digest)."""

    def pack(self) -> bytes:
        """The 128 bytes, ending with a digest of the first 112."""
        name = self.universe_name.encode()
        if len(name) > _UNIVERSE_NAME_SIZE:
            raise QuantumGraphFileError(
                f"Universe name {self.universe_name!r} is longer than {_UNIVERSE_NAME_SIZE} bytes."
            )
        body = _PREAMBLE_STRUCT.pack(
            MAGIC,
            *self.format_version,
            self.universe_version,
            name,
            self.header_offset,
            self.header_length,
            self.header_raw_length,
            self.file_size,
            self.header_digest,
        )
        return body + _digest(body)

    @classmethod
    def unpack(cls, data: bytes, path: Path) -> Preamble:
        """Parse and check the preamble read from ``path`` (magic, format version, digest)."""
        if not data.startswith(MAGIC[: len(data)]) or not data:
            raise QuantumGraphFileError(
                f"{path} is not a quantum graph (.qg) file: it does not start with the .qg magic bytes."
            )
        if len(data) >= 12:
            major, minor = struct.unpack_from("<HH", data, 8)
            if major != FORMAT_VERSION[0]:
                raise QuantumGraphFileError(
                    f"{path} has .qg format version {major}.{minor}; this software reads version "
                    f"{FORMAT_VERSION[0]}.x. Rebuild the graph with this version of quanta."
                )
        if len(data) < PREAMBLE_SIZE:
            raise QuantumGraphFileError(
                f"{path} is truncated: {len(data)} bytes, shorter than the {PREAMBLE_SIZE}-byte preamble."
            )
        if _digest(data[:_PREAMBLE_DIGEST_OFFSET]) != data[_PREAMBLE_DIGEST_OFFSET:PREAMBLE_SIZE]:
            raise QuantumGraphFileError(f"{path} is corrupted: the preamble fails its checksum.")
        fields = _PREAMBLE_STRUCT.unpack_from(data)
        return cls(
            format_version=(fields[1], fields[2]),
            universe_version=fields[3],
            universe_name=fields[4].rstrip(b"\0").decode(),
            header_offset=fields[5],
            header_length=fields[6],
            header_raw_length=fields[7],
            file_size=fields[8],
            header_digest=fields[9],
        )


# -- sections ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """One named part of a block: an Arrow table (or raw bytes) and how many leading rows it owns.

    A row is *owned* by exactly one block in the file; the other copies exist so that each block is
    self-contained. Reading the whole graph keeps only the owned rows: no de-duplication needed.
    """

    name: str
    """``quanta/<label>``, ``edges``, ``datasets/<type>``, ``records``, ``init_edges``, ``pruned``, ``page``."""
    owned: int
    """Number of leading rows this block owns."""
    data: pa.Buffer
    """Arrow IPC stream bytes (raw bytes for index pages)."""

    def table(self) -> pa.Table:
        """The section's Arrow table (zero-copy over the decompressed block)."""
        return pa.ipc.open_stream(self.data).read_all()

    def owned_table(self) -> pa.Table:
        """Only the rows this block owns."""
        table = self.table()
        return table if self.owned >= table.num_rows else table.slice(0, self.owned)


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode_sections(sections: Collection[tuple[str, pa.Table | bytes, int]]) -> bytes:
    """Frame ``(name, table or raw bytes, owned rows)`` sections into one (uncompressed) block payload.

    Layout: ``u32 count``, then per section ``u16 name length, u64 owned, u64 size, name, padding to
    8 bytes, data`` (little endian), so Arrow buffers stay aligned in the decompressed block.
    """
    parts: list[bytes | pa.Buffer] = [struct.pack("<I", len(sections))]
    position = 4
    for name, content, owned in sections:
        data = content if isinstance(content, bytes) else _ipc_bytes(content)
        encoded = name.encode()
        head = _SECTION_HEAD.pack(len(encoded), owned, len(data)) + encoded
        position += len(head)
        padding = -position % _ALIGNMENT
        parts.append(head + b"\0" * padding)
        parts.append(data)
        position += padding + len(data)
    return b"".join(parts)


def decode_sections(payload: bytes, wanted: Collection[str] | None = None) -> dict[str, Section]:
    """Sections of a decompressed block by name (only ``wanted`` ones if given); no data is copied."""
    buffer = pa.py_buffer(payload)
    (count,) = struct.unpack_from("<I", payload, 0)
    position = 4
    result: dict[str, Section] = {}
    for _ in range(count):
        name_length, owned, size = _SECTION_HEAD.unpack_from(payload, position)
        position += _SECTION_HEAD.size
        name = payload[position : position + name_length].decode()
        position += name_length
        position += -position % _ALIGNMENT
        if position + size > len(payload):
            raise ValueError(f"section {name!r} runs past the end of its block")
        if wanted is None or name in wanted:
            result[name] = Section(name, owned, buffer.slice(position, size))
        position += size
    return result


# -- writing -------------------------------------------------------------------------------------


class QgFileWriter:
    """Writes a ``.qg`` file atomically: blocks are streamed to a temporary file in the target's
    directory, then the header and preamble, then the file is renamed into place.

    Use as a context manager and call `finish` inside it; leaving the block without `finish` (or with
    an exception) removes the temporary file and leaves any existing file at ``path`` untouched.
    """

    def __init__(self, path: str | os.PathLike[str], universe_name: str, universe_version: int) -> None:
        self.path = Path(path)
        self._universe = (universe_name, universe_version)
        self._compressor = zstandard.ZstdCompressor(level=_COMPRESSION_LEVEL)
        self._blocks: dict[str, list[Any]] = {
            key: [] for key in ("kind", "task", "quanta", "offset", "length", "raw_length", "blake2b")
        }
        self._stream: IO[bytes] | None = None
        self._temp: Path | None = None
        self._position = PREAMBLE_SIZE

    def __enter__(self) -> QgFileWriter:
        try:
            fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as err:
            raise QuantumGraphFileError(f"Cannot write quantum graph file {self.path}: {err}") from err
        self._temp = Path(name)
        self._stream = os.fdopen(fd, "wb")
        self._write(b"\0" * PREAMBLE_SIZE)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._temp is not None:  # not finished: an error, or finish was never called
            self._temp.unlink(missing_ok=True)
            self._temp = None

    @property
    def block_count(self) -> int:
        """Blocks written so far (the next block's number)."""
        return len(self._blocks["kind"])

    def _write(self, data: bytes) -> None:
        if self._stream is None:
            raise QuantumGraphFileError(f"Quantum graph file {self.path} is not open for writing.")
        try:
            self._stream.write(data)
        except OSError as err:
            raise QuantumGraphFileError(f"Cannot write quantum graph file {self.path}: {err}") from err

    def add_block(self, kind: str, payload: bytes, *, task: str = "", quanta: int = 0) -> int:
        """Compress and append one block; returns its number."""
        compressed = self._compressor.compress(payload)
        self._write(compressed)
        for key, value in (
            ("kind", kind),
            ("task", task),
            ("quanta", quanta),
            ("offset", self._position),
            ("length", len(compressed)),
            ("raw_length", len(payload)),
            ("blake2b", _digest(compressed).hex()),
        ):
            self._blocks[key].append(value)
        self._position += len(compressed)
        return self.block_count - 1

    def finish(self, header: dict[str, Any]) -> None:
        """Append the header (``header`` plus the block table), write the preamble, rename into place."""
        if self._stream is None or self._temp is None:
            raise QuantumGraphFileError(f"Quantum graph file {self.path} is not open for writing.")
        raw = json.dumps({**header, "blocks": self._blocks}, separators=(",", ":")).encode()
        compressed = self._compressor.compress(raw)
        self._write(compressed)
        preamble = Preamble(
            format_version=FORMAT_VERSION,
            universe_name=self._universe[0],
            universe_version=self._universe[1],
            header_offset=self._position,
            header_length=len(compressed),
            header_raw_length=len(raw),
            file_size=self._position + len(compressed),
            header_digest=_digest(compressed),
        )
        try:
            self._stream.seek(0)
            self._stream.write(preamble.pack())
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._stream.close()
            self._stream = None
            os.chmod(self._temp, default_file_mode())  # mkstemp makes it private; jobs of other users read it
            os.replace(self._temp, self.path)
            self._temp = None
        except OSError as err:
            raise QuantumGraphFileError(f"Cannot write quantum graph file {self.path}: {err}") from err
        _sync_directory(self.path.parent)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------------------------


class QgFileReader:
    """An open ``.qg`` file: preamble and header read and verified; blocks read (and verified) on demand.

    Opening costs two small reads; nothing else is read until `block` is called.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._stream: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise QuantumGraphFileError(f"Quantum graph file {self.path} does not exist.") from None
        except OSError as err:
            raise QuantumGraphFileError(f"Cannot open quantum graph file {self.path}: {err}") from err
        try:
            self.file_size = os.fstat(self._stream.fileno()).st_size
            self.preamble = Preamble.unpack(self._stream.read(PREAMBLE_SIZE), self.path)
            self._check_size()
            self.header = self._read_header()
            blocks = self.header["blocks"]
            self._kinds: list[str] = blocks["kind"]
            self._tasks: list[str] = blocks["task"]
            self._offsets: list[int] = blocks["offset"]
            self._lengths: list[int] = blocks["length"]
            self._raw_lengths: list[int] = blocks["raw_length"]
            self._digests: list[str] = blocks["blake2b"]
        except BaseException:
            self._stream.close()
            raise

    def __enter__(self) -> QgFileReader:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._stream.close()

    def _check_size(self) -> None:
        expected = self.preamble.file_size
        if self.file_size < expected:
            raise QuantumGraphFileError(
                f"{self.path} is truncated: {self.file_size} bytes where the preamble records {expected} "
                f"({expected - self.file_size} bytes missing{self._lost_part()})."
            )
        if self.file_size > expected:
            raise QuantumGraphFileError(
                f"{self.path} is corrupted: {self.file_size} bytes where the preamble records {expected} "
                "(data was appended or the file was overwritten in place)."
            )

    def _lost_part(self) -> str:
        if self.file_size < self.preamble.header_offset:
            return f"; blocks from offset {self.file_size} on and the header are lost"
        return "; the header is incomplete"

    def _read_header(self) -> dict[str, Any]:
        preamble = self.preamble
        data = self._read_at(preamble.header_offset, preamble.header_length, "the header")
        if _digest(data) != preamble.header_digest:
            raise QuantumGraphFileError(f"{self.path} is corrupted: the header fails its checksum.")
        try:
            raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=preamble.header_raw_length)
            header: dict[str, Any] = json.loads(raw)
            _ = header["blocks"]["offset"]
        except (zstandard.ZstdError, ValueError, KeyError, TypeError) as err:
            raise QuantumGraphFileError(f"{self.path} has an unreadable header: {err}") from err
        return header

    def _read_at(self, offset: int, length: int, what: str) -> bytes:
        try:
            data = os.pread(self._stream.fileno(), length, offset)  # no shared file position: thread-safe
        except OSError as err:
            raise QuantumGraphFileError(
                f"Cannot read {what} of quantum graph file {self.path}: {err}"
            ) from err
        if len(data) != length:
            raise QuantumGraphFileError(
                f"{self.path} is truncated: {what} has {len(data)} of its {length} bytes."
            )
        return data

    @property
    def block_count(self) -> int:
        """Number of blocks in the file."""
        return len(self._kinds)

    def describe(self, number: int) -> str:
        """``block N (what it holds)`` for messages."""
        kind, task = self._kinds[number], self._tasks[number]
        what = {
            BlockKind.GLOBAL: "init datasets",
            BlockKind.QUANTA: f"quanta of task {task!r}",
            BlockKind.EXTRAS: "pruned quanta and unreferenced datasets",
            BlockKind.INDEX: "node-id index page",
        }.get(kind, kind)
        return f"block {number} ({what})"

    def block(self, number: int) -> bytes:
        """The decompressed payload of block ``number``, its checksum verified."""
        if not 0 <= number < self.block_count:
            raise QuantumGraphFileError(f"{self.path} has no block {number} (it has {self.block_count}).")
        what = self.describe(number)
        data = self._read_at(self._offsets[number], self._lengths[number], what)
        if _digest(data).hex() != self._digests[number]:
            raise QuantumGraphFileError(f"{self.path} is corrupted: {what} fails its checksum.")
        try:
            payload = zstandard.ZstdDecompressor().decompress(data, max_output_size=self._raw_lengths[number])
        except zstandard.ZstdError as err:
            raise QuantumGraphFileError(f"{self.path}: {what} cannot be decompressed: {err}") from err
        if len(payload) != self._raw_lengths[number]:
            raise QuantumGraphFileError(
                f"{self.path} is corrupted: {what} decompresses to {len(payload)} bytes, "
                f"expected {self._raw_lengths[number]}."
            )
        return payload

    def sections(
        self, number: int, wanted: Collection[str] | None = None, payload: bytes | None = None
    ) -> dict[str, Section]:
        """The sections of block ``number`` (only ``wanted`` ones if given; ``payload`` if already read)."""
        if payload is None:
            payload = self.block(number)
        try:
            return decode_sections(payload, wanted)
        except (struct.error, ValueError, UnicodeDecodeError) as err:
            raise QuantumGraphFileError(f"{self.path}: {self.describe(number)} is malformed: {err}") from err

    def read_blocks(self, numbers: Iterable[int], threads: int = 2) -> Iterator[tuple[int, bytes]]:
        """``(number, payload)`` of each block in order, read and decompressed ahead in ``threads`` threads.

        zstd and the checksum release the GIL, so decompression overlaps the caller's decoding.
        """
        from concurrent.futures import ThreadPoolExecutor  # only whole-graph reads need it, not jobs

        numbers = list(numbers)
        if threads <= 1 or len(numbers) <= 1:
            yield from ((number, self.block(number)) for number in numbers)
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qg-read") as pool:
            window: deque[tuple[int, Future[bytes]]] = deque()
            pending = iter(numbers)
            for number in pending:
                window.append((number, pool.submit(self.block, number)))
                if len(window) >= 4 * threads:
                    break
            while window:
                number, future = window.popleft()
                following = next(pending, None)
                if following is not None:
                    window.append((following, pool.submit(self.block, following)))
                yield number, future.result()

    def blocks_of_kind(self, kind: str) -> Iterator[int]:
        """Numbers of the blocks of one `BlockKind`, in file order."""
        return (number for number, k in enumerate(self._kinds) if k == kind)

    def table(self, section: Section, number: int) -> pa.Table:
        """``section.table()`` with Arrow errors reported as a malformed block."""
        try:
            return section.table()
        except (pa.ArrowException, ValueError) as err:
            raise QuantumGraphFileError(
                f"{self.path}: section {section.name!r} of {self.describe(number)} is malformed: {err}"
            ) from err
