"""Show fetch progress on a ``rich.progress.Progress`` the CLI owns: one bar per wheel."""

from __future__ import annotations

import threading

from rich.progress import Progress, TaskID

from fsnbuild.layers.fetch import FetchProgress, ProgressCallback


def rich_fetch_progress(progress: Progress) -> ProgressCallback:
    """A fetch_wheels callback that adds a task per wheel to ``progress`` and advances it.

    Callbacks arrive from fetch worker threads; rich's Progress takes its own lock, and the
    task table here has one too.
    """
    tasks: dict[str, TaskID] = {}
    lock = threading.Lock()

    def update(event: FetchProgress) -> None:
        with lock:
            task = tasks.get(event.filename)
            if task is None:
                task = progress.add_task(f"{event.package} ({event.source})", total=event.total)
                tasks[event.filename] = task
        progress.update(task, completed=event.done, description=f"{event.package} ({event.source})")
        if event.finished:
            progress.update(
                task, completed=event.total or event.done, total=event.total or event.done
            )

    return update
