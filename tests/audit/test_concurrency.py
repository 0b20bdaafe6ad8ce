from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.audit.services import audit_record
from oversight.audit.verification import audit_chain_verify

THREADS = 8
EVENTS_PER_THREAD = 500


def _writer(index: int, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        barrier.wait()
        for i in range(EVENTS_PER_THREAD):
            with transaction.atomic():
                audit_record(
                    actor=Actor.system(f"writer-{index}"),
                    verb="test.concurrent",
                    target=("test.thing", f"{index}-{i}", f"thing {index}-{i}"),
                    after={"writer": index, "i": i},
                )
    except BaseException as exc:  # surfaced in the main thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_unbroken_chain() -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_writer, args=(n, barrier, errors)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = THREADS * EVENTS_PER_THREAD
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))  # no gaps, no duplicates
    for n in range(THREADS):
        assert (
            AuditEvent.objects.filter(actor_label=f"system:writer-{n}").count() == EVENTS_PER_THREAD
        )
    checked, found = audit_chain_verify()
    assert (checked, found) == (total, None)
