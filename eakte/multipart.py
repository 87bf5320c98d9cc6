"""Streaming multipart/form-data: fields in memory, the one file part as a pull stream.

Starlette's `request.form()` spools whole files before the route runs. Here the
file part is handed to a blob store as it arrives, so a 2 GB upload passes
through in chunks and never sits in memory or in a temporary file.

While the store writes (a blocking call in a worker thread), a task on the event loop
keeps reading the body into a bounded buffer (`READ_AHEAD` bytes): receiving from the
client overlaps with sending to the store, and the worker takes what has arrived in
large pieces, with one hop between thread and event loop per piece rather than per
network read.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio.from_thread
import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from eakte.errors import BadRequest, InvalidInput

T = TypeVar("T")

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50
#: File bytes received ahead of the store; bounds memory per upload (what the worker took
#: last, and up to this much more). With 2 MiB a 2 GiB upload to S3 peaked at 188 MiB RSS for
#: the whole server (156 MiB idle); 8 MiB cost 213 MiB for the same throughput, as glibc kept
#: the larger buffers' memory.
READ_AHEAD = 2 * 1024 * 1024


class MultipartStream:
    """Pull parser over a request body with at most one file part."""

    def __init__(self, request: Request) -> None:
        ctype, params = parse_options_header(request.headers.get("content-type"))
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise BadRequest("expected a multipart/form-data body with a boundary")
        self._body: AsyncIterator[bytes] = request.stream().__aiter__()
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._on_part_begin,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_end": self._on_end,
                },
            )
        except FormParserError as exc:  # e.g. a boundary longer than the parser allows
            raise BadRequest(f"invalid multipart boundary: {exc}") from None
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_content_type: str | None = None
        self._headers: dict[str, bytes] = {}
        self._hname = bytearray()
        self._hvalue = bytearray()
        self._field_name: str | None = None
        self._field_value = bytearray()
        self._in_file = False
        self._file_seen = False
        self._file_done = False
        self._buffer = bytearray()
        self._body_done = False
        self._closed = False  # the closing delimiter (--boundary--) was seen
        self._arrived = asyncio.Event()  # set when data, the end or an error is there
        self._taken = asyncio.Event()  # set when the reader made room in the buffer
        self._failure: BaseException | None = None

    # -- parser callbacks -------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _on_header_end(self) -> None:
        # Raw bytes: browsers send UTF-8 file names, decoded below once the header is split.
        self._headers[self._hname.decode("latin-1").lower()] = bytes(self._hvalue)
        self._hname.clear()
        self._hvalue.clear()

    def _on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise BadRequest("each multipart part needs Content-Disposition: form-data; name=...")
        name = params[b"name"].decode("utf-8", "replace")
        if b"filename" in params:
            if self._file_seen:
                raise InvalidInput("send one file per request")
            self._file_seen = self._in_file = True
            self.filename = params[b"filename"].decode("utf-8", "replace")
            content_type = self._headers.get("content-type")
            self.file_content_type = content_type.decode("latin-1") if content_type else None
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidInput(f"too many form fields (at most {MAX_FIELDS})")
            self._field_name = name
            self._field_value.clear()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._buffer += memoryview(data)[start:end]  # one copy, not a slice and a copy
        else:
            self._field_value += data[start:end]
            if len(self._field_value) > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field {self._field_name} is too long")

    def _on_part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True
        elif self._field_name is not None:
            self.fields[self._field_name] = self._field_value.decode("utf-8", "replace")
            self._field_name = None

    def _on_end(self) -> None:
        self._closed = True

    # -- pulling ----------------------------------------------------------------------------
    async def _feed(self) -> None:
        try:
            chunk = await self._body.__anext__()
        except StopAsyncIteration:
            self._body_done = True
            # The parser does not check this itself (its finalize() is empty): without the
            # closing delimiter the body was cut off, and a part may be missing or truncated.
            if not self._closed:
                where = "inside the file part" if self._in_file else "before the closing boundary"
                raise BadRequest(f"the request body ended {where}") from None
            return
        if chunk:
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                # The parser's own errors (bad framing, a part header over its size limit)
                # are the client's; our callbacks raise domain errors, which pass through.
                raise BadRequest(f"malformed multipart body: {exc}") from None

    async def until_file(self) -> None:
        """Parse up to the start of the file part; fields before it are in `fields`."""
        while not self._file_seen and not self._body_done:
            await self._feed()
        if not self._file_seen:
            raise InvalidInput("the form has no file part (a field with a filename)")

    async def read_ahead(self) -> None:
        """Receive the file part into the buffer, never more than READ_AHEAD bytes ahead.

        Runs as a task beside the reader; an error (bad framing, the client went away)
        is kept for `read_chunk` and `finish` to raise. It may come with the piece that ends
        the file part, from what follows it (a second file, a field too long).
        """
        try:
            while not self._file_done:
                if self._body_done:  # _feed raises at the end already; never spin on it
                    raise BadRequest("the request body ended inside the file part")
                while len(self._buffer) >= READ_AHEAD:
                    self._taken.clear()
                    await self._taken.wait()
                await self._feed()
                self._arrived.set()
        except Exception as exc:
            self._failure = exc
        finally:
            self._arrived.set()

    async def read_chunk(self) -> bytearray:
        """The next piece of the file part: all that has arrived; empty at its end."""
        # The failure first, even with the file complete: the form as a whole is refused,
        # so the store need not finish writing a blob that would only be removed again.
        while self._failure is None and not self._buffer and not self._file_done:
            self._arrived.clear()
            await self._arrived.wait()
        if self._failure is not None:
            raise self._failure
        chunk, self._buffer = self._buffer, bytearray()  # handed over whole, not copied
        self._taken.set()
        return chunk

    async def read_whole(self) -> bytes:
        """The whole body at once: returns the file part, fields go to `fields`.

        For bodies whose declared length is small; the caller bounds it.
        """
        await self.until_file()
        await self.finish()
        data, self._buffer = self._buffer, bytearray()
        return bytes(data)

    async def finish(self) -> None:
        """Read the rest of the body, collecting fields after the file part.

        Raises what went wrong while the file part was received (`read_ahead`): the parser
        stopped there, so what it has not parsed yet cannot be trusted either.
        """
        if self._failure is not None:
            raise self._failure
        while not self._body_done:
            await self._feed()

    def file_reader(self) -> io.RawIOBase:
        """A blocking file object over the file part, for use in a worker thread."""
        return _ThreadReader(self)


class _ThreadReader(io.RawIOBase):
    """Reads the file part from a worker thread by calling back into the event loop."""

    def __init__(self, stream: MultipartStream) -> None:
        self._stream = stream
        self._pending = bytearray()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pos >= len(self._pending):
            self._pending = anyio.from_thread.run(self._stream.read_chunk)
            self._pos = 0
        n = min(len(buffer), len(self._pending) - self._pos)
        buffer[:n] = memoryview(self._pending)[self._pos : self._pos + n]
        self._pos += n
        return n


async def receive_upload(
    request: Request,
    consume: Callable[[io.RawIOBase, str | None], T],
    discard: Callable[[T], None],
) -> tuple[T, dict[str, str]]:
    """Hand the request's file part to `consume` (in a worker thread) and collect the fields.

    `consume` gets the file part as a blocking stream and its client file name. If the rest
    of the body turns out bad, `discard` undoes what `consume` stored.
    """
    form = MultipartStream(request)
    await form.until_file()
    receiving = asyncio.create_task(form.read_ahead())
    try:
        result = await anyio.to_thread.run_sync(
            lambda: consume(form.file_reader(), form.filename)
        )
    finally:
        # Done if the file was read to its end; otherwise the store gave up early.
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
    try:
        await form.finish()
    except BaseException:
        await anyio.to_thread.run_sync(lambda: discard(result))
        raise
    return result, form.fields
