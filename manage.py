#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oversight.settings")
    if not os.environ.get("SECRET_KEY") and "DEBUG" not in os.environ:
        # No production settings at all: a developer's checkout, so run as development.
        # Servers (oversight.asgi, Celery) still refuse to start without a SECRET_KEY, and
        # an explicit DEBUG=0 still requires one here.
        os.environ["DEBUG"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
