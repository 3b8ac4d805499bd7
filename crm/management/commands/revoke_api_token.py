from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.auth import revoke_tokens


class Command(BaseCommand):
    help = "Revoke a user's API tokens (all, or the one whose first 8 characters are given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--prefix", help="the first 8 characters of the token")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        revoked = revoke_tokens(user=user, prefix=options["prefix"])
        self.stdout.write(f"revoked {revoked} token(s)")
