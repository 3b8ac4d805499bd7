from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser

from crm.auth import create_token


class Command(BaseCommand):
    help = "Create an API token for a user (creating the user if missing); prints it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = User.objects.get_or_create(username=options["username"])
        if created:
            user.set_unusable_password()
            user.save()
            self.stdout.write(f"created user {user.username}")
        self.stdout.write("token (shown only now; store it safely):")
        self.stdout.write(create_token(user))
