"""The baseline the demo compares with: plain httpx and the retry loop people write first.

Up to 5 attempts for any method, on any transport error, 429 or 5xx, 100 ms apart, ignoring
Retry-After and whether the request may already have been carried out.
"""

from __future__ import annotations

import anyio
import httpx

__all__ = ["NaiveRetryTransport"]


class NaiveRetryTransport(httpx.AsyncBaseTransport):
    """Retries everything that failed, 5 attempts, 0.1 s apart."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, attempts: int = 5, delay: float = 0.1
    ) -> None:
        self.inner, self.attempts, self.delay = inner, attempts, delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # so the body can be sent again
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError:
                if last:
                    raise
            else:
                if last or (response.status_code != 429 and response.status_code < 500):
                    return response
                await response.aclose()
            await anyio.sleep(self.delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self.inner.aclose()
