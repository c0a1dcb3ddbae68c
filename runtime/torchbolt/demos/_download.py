"""Downloads for the demo datasets, with an error that says what to do when there is no network."""

from __future__ import annotations

import os
import urllib.error
import urllib.request


def fetch(url: str, destination: str, what: str) -> None:
    """Download `url` to `destination` (atomically); a RuntimeError naming the file to provide when it fails."""
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    partial = destination + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:  # noqa: S310
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        if os.path.exists(partial):
            os.remove(partial)
        raise RuntimeError(
            f"{what}: could not download {url} ({err}). Without network access, download it elsewhere and "
            f"place it at {os.path.abspath(destination)}, then run again."
        ) from None
    os.replace(partial, destination)
