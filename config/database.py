"""DATABASES['default'] from DATABASE_URL (or the embedded server when it is unset), and the
read replicas from DATABASE_REPLICA_URLS."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from config.env import ImproperEnvironment


def parse_database_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperEnvironment(f"DATABASE_URL: unsupported scheme {parts.scheme!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.pop("host", None) or parts.hostname or ""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": query,
    }


def _redacted(url: str) -> str:
    """The URL for an error message, without its password."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_replica_urls(raw: str) -> list[dict[str, Any]]:
    """DATABASE_REPLICA_URLS: comma-separated URLs of read replicas, each parsed like
    DATABASE_URL; any invalid one stops the start-up with its position and the reason."""
    urls = [url.strip() for url in raw.split(",")]
    if raw.strip() == "":
        return []
    databases = []
    for number, url in enumerate(urls, start=1):
        where = f"DATABASE_REPLICA_URLS: URL {number} of {len(urls)} ({_redacted(url)!r})"
        if not url:
            raise ImproperEnvironment(f"{where}: empty (a stray comma?)")
        try:
            database = parse_database_url(url)
            netloc_port = urlsplit(url).port  # raises ValueError for a port that is no number
        except ImproperEnvironment as error:
            reason = str(error).removeprefix("DATABASE_URL: ")
            raise ImproperEnvironment(f"{where}: {reason}") from None
        except ValueError as error:
            raise ImproperEnvironment(f"{where}: {error}") from None
        if not database["HOST"] and netloc_port is None:
            raise ImproperEnvironment(f"{where}: no host (postgresql://user@host:port/name)")
        databases.append(database)
    return databases
