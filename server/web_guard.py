"""Keep the server up where the playground cannot run.

Gradio needs a writable temp directory (GRADIO_TEMP_DIR) when the /web
playground starts. On a read-only filesystem the API still works, so the
playground is switched off, with a warning, instead of the server failing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENABLED_VALUES = ("true", "1", "yes")


def disable_playground_if_unwritable() -> None:
    if os.environ.get("ENABLE_WEB_INTERFACE", "false").lower() not in ENABLED_VALUES:
        return
    folder = os.environ.get("GRADIO_TEMP_DIR")
    try:
        path = Path(folder) if folder else Path(tempfile.gettempdir()) / "gradio"
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        os.environ["ENABLE_WEB_INTERFACE"] = "false"
        print(f"support_env: the /web playground is off: its temp directory is not writable ({exc})", file=sys.stderr)
