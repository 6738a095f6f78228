"""The client papermill talks to each phase's kernel through: jupyter_client's, with a wait for
the kernel that ends as soon as the kernel has answered.

jupyter_client's ``wait_for_ready`` asks for the kernel's info, then drains IOPub until 0.2 s
pass without a message: every phase began 0.2 s late, however long its kernel had been ready.
This one asks for the kernel's info and reads IOPub until the kernel reports itself idle after
that request. IOPub messages arrive in the order the kernel sent them, so by then everything
the kernel published before is read (and dropped, as jupyter_client drops it). A subscription
still joining misses the status; the request is then sent again, as jupyter_client does.
"""

from __future__ import annotations

import asyncio
import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from nbclient.exceptions import DeadKernelError

#: The class path a kernel manager is given (``client_class``) to make these clients.
CLIENT_CLASS = f"{__name__}.ReadyKernelClient"
#: How long one round waits for the kernel's answer on each channel before asking again.
ROUND_SEC = 1.0


class KernelDiedAtStart(DeadKernelError):
    """The kernel ended before it answered its first request: it ran nothing of the phase."""


class ReadyKernelClient(AsyncKernelClient):
    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            asked = self.kernel_info()
            if await self._answered(asked, deadline):
                return
            if not await self._async_is_alive():
                raise KernelDiedAtStart("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    async def _answered(self, asked: str, deadline: float) -> bool:
        """Whether the kernel replied to request ``asked`` and then said on IOPub it is idle."""
        reply = await self._next(self.shell_channel, asked, "kernel_info_reply", deadline)
        if reply is None:
            return False
        if await self._next(self.iopub_channel, asked, "status", deadline, state="idle") is None:
            return False
        self._handle_kernel_info_reply(reply)
        return True

    @staticmethod
    async def _next(
        channel: Any, asked: str, kind: str, deadline: float, state: str | None = None
    ) -> dict[str, Any] | None:
        """The first message of ``kind`` in answer to ``asked`` within a round (others dropped)."""
        end = min(deadline, time.monotonic() + ROUND_SEC)
        while (left := end - time.monotonic()) > 0:
            try:
                message: dict[str, Any] = await channel.get_msg(timeout=left)
            except (Empty, asyncio.TimeoutError):
                return None
            if message.get("parent_header", {}).get("msg_id") != asked or message.get("msg_type") != kind:
                continue
            if state is None or message.get("content", {}).get("execution_state") == state:
                return message
        return None
