"""Colab helpers for the worker notebook: secrets, Drive, GPU detection without CUDA.

The notebook's kernel becomes the worker's parent process, which must never touch
CUDA (a forked child cannot re-initialise it): the GPU is detected with nvidia-smi.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def on_colab() -> bool:
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def secret(name: str) -> str | None:
    """A Colab secret (the key icon in the sidebar), else the environment variable."""
    if on_colab():
        try:
            from google.colab import userdata

            return userdata.get(name)
        except Exception:  # SecretNotFoundError, NotebookAccessError: fall back to env
            pass
    return os.environ.get(name)


def mount_drive(mount_point: str = "/content/drive") -> bool:
    """Mount Google Drive on Colab; False elsewhere."""
    if not on_colab():
        return False
    from google.colab import drive

    drive.mount(mount_point)
    return True


def detect_gpu() -> str:
    """The GPU's name from nvidia-smi, or "none (CPU)", without initialising CUDA here."""
    if shutil.which("nvidia-smi") is None:
        return "none (CPU)"
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return out.stdout.strip() or "none (CPU)"
