"""Stopping a background task its owner started (house rule: every task has an owner that
cancels *and* awaits it)."""

from __future__ import annotations

import asyncio
import logging


async def stop_gracefully(task: asyncio.Task[None], grace: float, log: logging.Logger, what: str) -> None:
    """Give ``task`` up to ``grace`` seconds to finish what it is doing (its owner has already
    asked it to stop), then cancel it and await it; an error it had stopped on is logged."""
    done, _pending = await asyncio.wait({task}, timeout=grace)
    if not done:
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.error("%s had stopped on an error", what, exc_info=task.exception())
