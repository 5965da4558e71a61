"""`manage.py rundemo`: migrate (creating the demo users) and serve on 127.0.0.1, on $PORT or
8001 (`make django-demo` and `PORT=9001 make django-demo` run this)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the database and demo users, then serve the demo on 127.0.0.1:$PORT (8001)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", default=os.environ.get("PORT", "8001"))

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        self.stdout.write(
            "Django demo on http://localhost:{} (users: alice / alice-password, "
            "bob / bob-password, carol / carol-password)".format(options["port"])
        )
        call_command("runserver", f"127.0.0.1:{options['port']}", use_reloader=False)
