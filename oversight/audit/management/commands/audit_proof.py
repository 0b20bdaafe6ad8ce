from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from oversight.audit import merkle, verifier
from oversight.audit.models import AuditCheckpoint, AuditEvent
from oversight.audit.proofs import consistency_proof, inclusion_proof


class Command(BaseCommand):
    help = (
        "Print an RFC 9162 proof as JSON: --seq N, that event's inclusion in the newest "
        "checkpoint (or --checkpoint K); --from A --to B, the consistency of checkpoint A's "
        "tree with B's. Each is checked before it is printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seq", type=int, help="the event's sequence number")
        parser.add_argument("--checkpoint", type=int, help="prove against this checkpoint")
        parser.add_argument("--from", dest="first", type=int, help="the older checkpoint")
        parser.add_argument("--to", dest="second", type=int, help="the newer checkpoint")

    def _checkpoint(self, number: int | None) -> AuditCheckpoint:
        checkpoints = AuditCheckpoint.objects.order_by("-number")
        found = checkpoints.filter(number=number).first() if number else checkpoints.first()
        if found is None:
            raise CommandError(f"No checkpoint {f'#{number}' if number else 'yet'}.")
        return found

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["seq"] is not None:
                result = self._inclusion(options["seq"], options["checkpoint"])
            elif options["first"] and options["second"]:
                result = self._consistency(options["first"], options["second"])
            else:
                raise CommandError("Give --seq N, or --from A --to B.")
        except merkle.TreeError as exc:
            raise CommandError(f"Cannot prove it: {exc}") from None
        self.stdout.write(json.dumps(result, indent=1))

    def _inclusion(self, seq: int, number: int | None) -> dict[str, Any]:
        event = AuditEvent.objects.filter(seq=seq).first()
        if event is None:
            raise CommandError(f"No event {seq}.")
        checkpoint = self._checkpoint(number)
        proof = inclusion_proof(event, checkpoint)
        if proof is None:
            raise CommandError(f"Event {seq} is after checkpoint #{checkpoint.number}.")
        ok = verifier.verify_inclusion(
            proof["leaf_index"],
            proof["tree_size"],
            verifier.leaf_hash(event.hash),
            [bytes.fromhex(p) for p in proof["path"]],
            bytes.fromhex(checkpoint.root),
        )
        if not ok:
            raise CommandError(f"Event {seq} is not in checkpoint #{checkpoint.number}'s tree.")
        return {"seq": seq, "hash": event.hash, **proof}

    def _consistency(self, first: int, second: int) -> dict[str, Any]:
        older, newer = self._checkpoint(first), self._checkpoint(second)
        if older.tree_size > newer.tree_size:
            raise CommandError("--from must name the older checkpoint.")
        path = consistency_proof(older, newer) if older.tree_size < newer.tree_size else []
        ok = verifier.verify_consistency(
            older.tree_size,
            newer.tree_size,
            bytes.fromhex(older.root),
            bytes.fromhex(newer.root),
            [bytes.fromhex(p) for p in path],
        )
        if not ok:
            raise CommandError(f"Checkpoint #{second}'s tree does not extend #{first}'s.")
        return {
            "from": {"checkpoint": first, "tree_size": older.tree_size, "root": older.root},
            "to": {"checkpoint": second, "tree_size": newer.tree_size, "root": newer.root},
            "path": path,
        }
