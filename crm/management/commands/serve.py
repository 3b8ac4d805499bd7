from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from config import embedded_pg, replication
from crm.auth import create_token
from crm.seeding import table_counts

DEMO_USER = "demo"


class Command(BaseCommand):
    help = "Migrate, seed a demo data set if empty, create the demo login, serve with gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--demo-users", type=int, default=100_000)
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0)
        if not any(table_counts().values()):
            self.stdout.write(f"empty database: seeding {options['demo_users']:,} demo contacts")
            call_command("seed", users=options["demo_users"])
        password, token = self._demo_login()
        url = f"http://127.0.0.1:{options['port']}"
        self.stdout.write(f"\n  {url}  login: {DEMO_USER} / {password}\n  API token: {token}\n")
        if settings.REPLICA_ALIASES:
            self.stdout.write(f"  reads from {', '.join(settings.REPLICA_ALIASES)} (/healthz)\n")
        # SIGTERM is handled like Ctrl-C, and either stops gunicorn before the database.
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it off
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        server = subprocess.Popen(self._gunicorn(options))
        try:
            server.wait()
        except KeyboardInterrupt:
            server.terminate()
            server.wait(15)
        finally:
            if settings.REPLICAS:  # REPLICAS=N: the cluster of config/replication.py
                replication.stop_cluster()
            elif not os.environ.get("DATABASE_URL"):
                embedded_pg.stop()

    def _demo_login(self) -> tuple[str, str]:
        """The demo user's password is generated once and kept under .data/."""
        path = settings.DATA_DIR / "demo-password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        password = path.read_text().strip()
        user, _ = User.objects.get_or_create(username=DEMO_USER)
        user.set_password(password)
        user.save()
        return password, create_token(user)

    def _gunicorn(self, options: dict[str, Any]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{options['port']}",
            "--workers",
            str(options["workers"]),
            "--access-logfile",
            "-",
            "--timeout",
            "660",  # above the exports' 600 s statement limit (crm/export.py)
            "--graceful-timeout",
            "5",
        ]
