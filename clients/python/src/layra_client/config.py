"""Where the CLI keeps the server URL and credentials: `~/.config/layra/config.json` (or under
$XDG_CONFIG_HOME; LAYRA_CONFIG names another file), readable by its owner only (0600, in a 0700 folder).

LAYRA_URL and LAYRA_API_KEY override what the file holds. Stored credentials are only ever sent to the server
they were stored for: with LAYRA_URL naming another server, only LAYRA_API_KEY is used."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from layra_client.errors import LayraError, NotLoggedIn
from layra_client.transport import api_root


def config_path() -> Path:
    if os.environ.get("LAYRA_CONFIG"):
        return Path(os.environ["LAYRA_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "layra" / "config.json"


def load() -> dict:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LayraError(f"Cannot read the configuration {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def save(data: dict) -> Path:
    """Write the configuration atomically, mode 0600 from the start (never readable by others, even briefly)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


@dataclass
class Settings:
    url: str
    api_key: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    stored: bool = False  # the tokens came from the file (a refresh writes the new pair back)


def settings() -> Settings:
    """The server and credentials to use: the environment first, then the configuration file."""
    data = load()
    stored_url = data.get("url") or ""
    url = os.environ.get("LAYRA_URL") or stored_url
    if not url:
        raise NotLoggedIn("No server configured: run `layra login URL`, or set LAYRA_URL and LAYRA_API_KEY.")
    api_key = os.environ.get("LAYRA_API_KEY") or None
    if api_key:
        return Settings(url=url, api_key=api_key)
    if stored_url and api_root(stored_url) != api_root(url):
        raise NotLoggedIn(f"Not logged in to {url} (the stored login is for {stored_url}): run `layra login {url}` "
                          "or set LAYRA_API_KEY.")
    if data.get("api_key"):
        return Settings(url=url, api_key=data["api_key"], stored=True)
    if data.get("access_token") or data.get("refresh_token"):
        return Settings(url=url, access_token=data.get("access_token"), refresh_token=data.get("refresh_token"),
                        stored=True)
    raise NotLoggedIn(f"Not logged in to {url}: run `layra login`, or set LAYRA_API_KEY.")


def tokens_store(access: str, refresh: str) -> None:
    """Write a refreshed token pair back (each refresh token is spent once: the old one no longer works)."""
    data = load()
    data.update({"access_token": access, "refresh_token": refresh})
    save(data)
