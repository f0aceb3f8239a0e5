"""Reading the start of an error body without taking it from the caller.

To classify an error the stack needs its first bytes (a JSON envelope); the caller must still be
able to read all of it, however large, as a stream. :func:`peek` reads raw chunks until it holds
``limit`` bytes or the stream ends, then puts a :class:`ReplayStream` in the response's place that
yields those chunks again before the rest of the original stream.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Protocol

import httpx

__all__ = ["DEFAULT_PEEK_LIMIT", "ReplayStream", "decoded_prefix", "peek"]

DEFAULT_PEEK_LIMIT = 64 * 1024


class ReplayStream(httpx.AsyncByteStream):
    """Chunks already read, then whatever the original stream still has."""

    def __init__(
        self,
        head: list[bytes],
        rest: AsyncIterator[bytes] | None,
        original: httpx.AsyncByteStream,
    ) -> None:
        self._head = head
        self._rest = rest
        self._original = original

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head, self._head = self._head, []
        for chunk in head:
            yield chunk
        if self._rest is not None:
            rest, self._rest = self._rest, None
            async for chunk in rest:
                yield chunk

    async def aclose(self) -> None:
        rest, self._rest = self._rest, None
        try:
            if rest is not None:
                await _aclose_iterator(rest)
        finally:
            await self._original.aclose()


async def _aclose_iterator(iterator: AsyncIterator[bytes]) -> None:
    # A half-read async generator must be closed explicitly, or trio warns when it is collected.
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def peek(response: httpx.Response, limit: int = DEFAULT_PEEK_LIMIT) -> bytes:
    """Return up to ``limit`` raw bytes of ``response``'s body, leaving all of it readable.

    Args:
        response: A response fresh from a transport, its body not read yet.
        limit: How many bytes at most to hold for classification.

    Returns:
        The first bytes of the raw (still content-encoded) body. A failure while reading
        propagates as it is, and the response is closed first.
    """
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        return b""
    iterator = stream.__aiter__()
    head: list[bytes] = []
    size = 0
    exhausted = False
    try:
        while size < limit:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                exhausted = True
                break
            head.append(chunk)
            size += len(chunk)
    except BaseException:
        try:
            await _aclose_iterator(iterator)
        finally:
            await stream.aclose()
        raise
    response.stream = ReplayStream(head, None if exhausted else iterator, stream)
    return b"".join(head)[:limit]


def decoded_prefix(headers: httpx.Headers, raw: bytes, limit: int = DEFAULT_PEEK_LIMIT) -> bytes:
    """Undo ``Content-Encoding`` on a possibly truncated prefix, best effort, within ``limit``.

    Returns the decoded bytes (at most ``limit``), or ``b""`` when they cannot be decoded:
    the classification then falls back to the status line. Each encoding is undone only as far
    as ``limit`` bytes of its output, so a compression bomb (64 KiB of gzip that would inflate to
    64 MiB, or gzip inside gzip) costs no more memory than the bound. Encodings httpx does not
    know are skipped, as httpx itself skips them.
    """
    if not raw:
        return b""
    data = raw
    # "gzip, br" was gzipped first: the last encoding listed is undone first.
    for encoding in reversed(headers.get_list("content-encoding", split_commas=True)):
        decoded = _undo(encoding.strip().lower(), data, limit)
        if decoded is None:
            return b""
        data = decoded
    return data[:limit]


#: zlib's window bits for a gzip member, a zlib stream and raw deflate.
_GZIP, _ZLIB, _RAW_DEFLATE = zlib.MAX_WBITS | 16, zlib.MAX_WBITS, -zlib.MAX_WBITS
#: Input fed at a time to a decoder that cannot bound its output (brotli, zstd). Neither format
#: inflates a step this small past a few MiB.
_STEP = 16


def _undo(encoding: str, data: bytes, limit: int) -> bytes | None:
    """``data`` with one content-coding undone, at most ``limit`` bytes; None if it is corrupt."""
    if encoding in ("", "identity"):
        return data
    try:
        if encoding == "gzip":
            return zlib.decompressobj(_GZIP).decompress(data, limit)
        if encoding == "deflate":  # RFC 9110 says zlib; some servers send raw deflate
            try:
                return zlib.decompressobj(_ZLIB).decompress(data, limit)
            except zlib.error:
                return zlib.decompressobj(_RAW_DEFLATE).decompress(data, limit)
    except zlib.error:
        return None
    # br and zstd, when their packages are installed: httpx's own decoders, fed in small steps.
    probe = httpx.Response(200, headers={"content-encoding": encoding})
    decoder = probe._get_content_decoder()  # noqa: SLF001 - httpx has no public hook
    if isinstance(decoder, httpx._decoders.IdentityDecoder):  # noqa: SLF001 - unknown to httpx
        return data
    return _stepped(decoder, data, limit)


def _stepped(decoder: _Decoder, data: bytes, limit: int) -> bytes | None:
    """``data`` through ``decoder`` a few bytes at a time, until ``limit`` bytes come out."""
    out: list[bytes] = []
    size = 0
    try:
        for start in range(0, len(data), _STEP):
            piece = decoder.decode(data[start : start + _STEP])
            out.append(piece)
            size += len(piece)
            if size >= limit:
                break
    except (httpx.DecodingError, ValueError):
        return None
    return b"".join(out)[:limit]


class _Decoder(Protocol):
    def decode(self, data: bytes) -> bytes: ...
