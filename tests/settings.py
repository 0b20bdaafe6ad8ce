"""Test settings: production settings with test-only conveniences, stated here and nowhere else."""

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("SECRET_KEY", "tests-only-" + "x" * 50)
# Transactional tests flush the database between tests; allow it to empty the audit table.
os.environ.setdefault("AUDIT_FLUSH_ALLOWED", "1")

# Checkpoints: a key made once per machine for tests, and a sink directory per process
# (tests that look at delivered files set their own).
_test_var = Path(tempfile.gettempdir()) / f"oversight-tests-{os.getuid()}"
os.environ.setdefault("AUDIT_SIGNING_KEY_FILE", str(_test_var / "audit-key.pem"))
os.environ.setdefault("AUDIT_SIGNING_KEY_CREATE", "1")
os.environ.setdefault("AUDIT_CHECKPOINT_SINKS", "dir:" + tempfile.mkdtemp(prefix="checkpoints-"))

# Parallel runs (pytest-xdist, bin/test): each worker has a database of its own (pytest-django
# names it) and a Redis database of its own, which the servers and Celery workers it starts
# inherit. Even numbers only: tests that need "another deployment" use the next one up.
# (Processes a worker starts inherit its environment, already chosen: they keep what they
# were given, e.g. a test's "another deployment".)
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_chosen = os.environ.get("OVERSIGHT_TESTS_REDIS_CHOSEN") == _worker
if _worker.startswith("gw") and os.environ.get("REDIS_URL") and not _chosen:
    _redis = urlsplit(os.environ["REDIS_URL"])
    _number = 2 * (int(_worker[2:]) + 1)
    if _number > 14:  # Redis has 16 databases (0 to 15) unless configured otherwise
        raise RuntimeError("At most 7 test workers share one Redis: set TEST_WORKERS lower.")
    os.environ["REDIS_URL"] = _redis._replace(path=f"/{_number}").geturl()
    os.environ["OVERSIGHT_TESTS_REDIS_CHOSEN"] = _worker

from oversight.settings import *  # noqa: E402, F403

SECURE_SSL_REDIRECT = False  # the test client and the test server speak plain HTTP
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
SERVESTATIC_USE_FINDERS = True
# The websocket origin check reads this when oversight.asgi is imported, before the test
# runner adds "testserver"; the servers started by tests listen on 127.0.0.1.
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
# The webhook receivers tests start listen on this machine.
WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1"]
