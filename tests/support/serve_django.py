"""Serve the Django demo in its own process, for tests with several workers on one database.

python -m tests.support.serve_django PORT asgi|wsgi|migrate|mfa ARGS...
  asgi: uvicorn (Django's async path); wsgi: Django's threaded WSGI server (the sync path);
  migrate: create the tables; mfa: `manage.py mfa ARGS` (another process changing state).
Settings: tests.support.django_e2e_settings (see there for the environment it reads).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_app"


def main() -> None:
    sys.path.insert(0, str(PROJECT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.django_e2e_settings"
    import django

    django.setup()
    command, args = sys.argv[1], sys.argv[2:]
    if command == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    elif command == "mfa":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "mfa", *args])
    elif command == "asgi":
        import uvicorn
        from django.core.asgi import get_asgi_application

        app = get_asgi_application()
        uvicorn.run(app, host="127.0.0.1", port=int(args[0]), log_level="warning")
    elif command == "wsgi":
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
        from django.core.wsgi import get_wsgi_application

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadedWSGIServer):
            request_queue_size = 256  # Django's 10 would turn a burst away

        httpd = Server(("127.0.0.1", int(args[0])), Quiet)
        httpd.set_app(get_wsgi_application())
        httpd.serve_forever()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
