"""Reading the start of an error body without taking it from the caller.

To classify an error the stack needs its first bytes (a JSON envelope); the caller must still be
able to read all of it, however large, as a stream. :func:`peek` reads raw chunks until it holds
``limit`` bytes or the stream ends, then puts a :class:`ReplayStream` in the response's place that
yields those chunks again before the rest of the original stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
    """Undo ``Content-Encoding`` on a possibly truncated prefix, best effort.

    Returns the decoded bytes (at most ``limit``), or ``b""`` when they cannot be decoded:
    the classification then falls back to the status line.
    """
    if not raw:
        return b""
    if "content-encoding" not in headers:
        return raw[:limit]
    probe = httpx.Response(200, headers={"content-encoding": headers["content-encoding"]})
    try:
        # httpx's own decoders (gzip, deflate, br and zstd where installed); a truncated
        # prefix decodes as far as it goes.
        decoder = probe._get_content_decoder()  # noqa: SLF001 - httpx has no public hook
        return decoder.decode(raw)[:limit]
    except (httpx.DecodingError, ValueError):
        return b""
