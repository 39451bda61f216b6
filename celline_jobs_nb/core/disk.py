"""How much room a project takes: sizes of celline's big folders and the free space of its volume."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

PROJECT_FOLDERS = ("data", "resources", "results", "integration", "logs")


def tree_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (links are not followed; unreadable parts are skipped)."""
    total = 0
    stack = [path]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total


def project_disk_usage(root: Path) -> dict[str, Any]:
    """``{"folders": {"data": bytes, ...}, "free_bytes", "total_bytes", "measured_at"}``."""
    usage = shutil.disk_usage(root)
    return {
        "folders": {name: tree_size(root / name) for name in PROJECT_FOLDERS if (root / name).is_dir()},
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "measured_at": time.time(),
    }
