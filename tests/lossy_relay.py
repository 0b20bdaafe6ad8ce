"""The relay that loses answers (clients/python/tests/lossy_relay.py, the SDK's tests'),
for the server's tests: one copy, loaded from its file."""

from __future__ import annotations

import importlib.util
import sys

from tests.servers import ROOT

_PATH = ROOT / "clients" / "python" / "tests" / "lossy_relay.py"
_spec = importlib.util.spec_from_file_location("lossy_relay", _PATH)
assert _spec is not None and _spec.loader is not None
_module = sys.modules.setdefault("lossy_relay", importlib.util.module_from_spec(_spec))
if not hasattr(_module, "losing_answers"):
    _spec.loader.exec_module(_module)

losing_answers = _module.losing_answers
relay_url = _module.relay_url
