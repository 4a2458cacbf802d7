"""Apply platform commands at most once: validated, expiry-checked, acked with stable codes.

The command id is the idempotency key. An id seen before gets its recorded final ack again
and nothing is re-applied. Commands that only change local state are applied and acked
``accepted`` + ``done`` in one SQLite transaction, so a crash never leaves one applied but
unrecorded. ``open`` is physical: ``accepted`` is recorded first and ``done``/``failed``
when the unlock is confirmed or not; an ``open`` found half-way after a restart is answered
``failed INTERRUPTED`` rather than opening a door again.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from edge.agent.errors import CommandRejectedError, UnlockFailedError
from edge.agent.ledger import ArmedPickup, Reservation
from edge.agent.messages import Purpose
from edge.protocol.envelopes import (
    Ack,
    ArmPickupPayload,
    AssignPayload,
    Command,
    ConfigurePayload,
    OpenPayload,
    RevokePayload,
    decode_command,
)
from edge.protocol.errors import EnvelopeError

if TYPE_CHECKING:
    from edge.agent.core import LockerAgent

log = logging.getLogger(__name__)


class CommandProcessor:
    def __init__(self, agent: LockerAgent) -> None:
        self.agent = agent
        self.store = agent.store
        self.running: set[str] = set()  # ``open`` commands whose unlock is in progress

    def _ack(self, command_id: str, status: Any, code: str | None = None, detail: str = "") -> Ack:
        return Ack(
            command_id=command_id,
            status=status,
            code=code,
            detail=detail[:500] or None,
            at=self.agent.clock(),
        )

    def _record(self, command: Command | str, ack: Ack, *, final: bool) -> None:
        command_id, type_ = (
            (command.id, command.type) if isinstance(command, Command) else (command, "?")
        )
        self.store.record_command(command_id, type_, ack, final=final)
        self.agent.publisher.wake()

    def handle(self, raw: bytes) -> None:
        try:
            command = decode_command(raw)
        except EnvelopeError as exc:
            self._reject_malformed(raw, exc)
            return
        prior = self.store.command_ack(command.id)
        if prior is not None:
            self._repeat(command, *prior)
            return
        if command.is_expired(self.agent.clock()):
            self._record(command, self._ack(command.id, "rejected", "EXPIRED"), final=True)
            return
        try:
            if command.type == "open":
                self._start_open(command)
                return
            with self.store.transaction():
                detail = self._apply(command)
                self._record(command, self._ack(command.id, "accepted"), final=False)
                self._record(command, self._ack(command.id, "done", detail=detail), final=True)
        except CommandRejectedError as exc:
            ack = self._ack(command.id, "rejected", exc.code, exc.message)
            self._record(command, ack, final=True)
            return
        self.agent.publish_state()

    def _reject_malformed(self, raw: bytes, exc: EnvelopeError) -> None:
        """Answer a command we cannot validate, if it at least carries an id."""
        try:
            command_id = json.loads(raw).get("id")
        except (ValueError, AttributeError):
            command_id = None
        if not isinstance(command_id, str) or not command_id or len(command_id) > 64:
            log.warning("dropped a command without a usable id: %s", exc.message)
            return
        if self.store.command_ack(command_id) is None:
            ack = self._ack(command_id, "rejected", "BAD_COMMAND", exc.message)
            self._record(command_id, ack, final=True)

    def _repeat(self, command: Command, ack: Ack, final: bool) -> None:
        if final:
            self.store.append_ack(ack)  # the same ack, byte for byte
            self.agent.publisher.wake()
        elif command.id in self.running:
            self.store.append_ack(ack)
            self.agent.publisher.wake()
        else:
            # Accepted before a restart, never finished: do not open a door a second time.
            failed = self._ack(command.id, "failed", "INTERRUPTED", "agent restarted mid-command")
            self._record(command, failed, final=True)

    # --- appliers ----------------------------------------------------------------------

    def _apply(self, command: Command) -> str:
        payload = command.payload
        if isinstance(payload, AssignPayload):
            return self._assign(payload)
        if isinstance(payload, ArmPickupPayload):
            return self._arm(payload)
        if isinstance(payload, RevokePayload):
            return self._revoke(payload)
        if isinstance(payload, ConfigurePayload):
            return self._configure(payload)
        return "state published"  # sync: publish_state() runs after every applied command

    def _known(self, compartment: str) -> None:
        conf = self.agent.compartments.get(compartment)
        if conf is None:
            raise CommandRejectedError(
                f"compartment {compartment} does not exist here", code="UNKNOWN_COMPARTMENT"
            )
        if conf.out_of_service:
            raise CommandRejectedError(f"{compartment} is out of service", code="OUT_OF_SERVICE")

    def _assign(self, p: AssignPayload) -> str:
        self._known(p.compartment)
        now = self.agent.clock()
        if p.expires_at is not None and p.expires_at <= now:
            raise CommandRejectedError("reservation already expired", code="EXPIRED")
        held = self.store.reservations().get(p.compartment)
        armed = self.store.pickups().get(p.compartment)
        for other in (held, armed):
            if other is not None and other.order_id != p.order_id:
                raise CommandRejectedError(
                    f"{p.compartment} is held for another order", code="COMPARTMENT_BUSY"
                )
        deposited = held.deposited if held is not None else False
        self.store.put_reservation(
            Reservation(p.compartment, p.order_id, p.deposit_code_hash, p.expires_at, deposited)
        )
        return f"{p.compartment} reserved"

    def _arm(self, p: ArmPickupPayload) -> str:
        self._known(p.compartment)
        if p.valid_until <= self.agent.clock():
            raise CommandRejectedError("pickup window already closed", code="EXPIRED")
        if self.store.token_used(p.token_id):
            raise CommandRejectedError("token id already used here", code="TOKEN_USED")
        held = self.store.reservations().get(p.compartment)
        if held is not None and held.order_id != p.order_id:
            raise CommandRejectedError(
                f"{p.compartment} is held for another order", code="COMPARTMENT_BUSY"
            )
        self.store.put_pickup(
            ArmedPickup(p.compartment, p.order_id, p.token_id, p.fallback_code_hash, p.valid_until)
        )
        return f"{p.compartment} armed"

    def _revoke(self, p: RevokePayload) -> str:
        removed = []
        held = self.store.reservations().get(p.compartment)
        if held is not None and held.order_id == p.order_id:
            self.store.delete_reservation(p.compartment)
            removed.append("reservation")
        armed = self.store.pickups().get(p.compartment)
        if armed is not None and armed.order_id == p.order_id:
            self.store.delete_pickup(p.compartment)
            removed.append("pickup")
        return f"revoked {', '.join(removed)}" if removed else "nothing to revoke"

    def _configure(self, p: ConfigurePayload) -> str:
        changes = p.model_dump(exclude_none=True)
        if "poll_interval_ms" in changes and not 100 <= changes["poll_interval_ms"] <= 250:
            raise CommandRejectedError("poll_interval_ms must be 100-250", code="BAD_VALUE")
        self.agent.save_runtime(changes)
        return f"configured {', '.join(sorted(changes)) or 'nothing'}"

    # --- open (ops) ----------------------------------------------------------------------

    def _start_open(self, command: Command) -> None:
        assert isinstance(command.payload, OpenPayload)
        p = command.payload
        if p.compartment not in self.agent.compartments:
            raise CommandRejectedError(
                f"compartment {p.compartment} does not exist here", code="UNKNOWN_COMPARTMENT"
            )
        if p.compartment in self.agent.unlocking:
            raise CommandRejectedError("that door is opening already", code="DOOR_BUSY")
        self._record(command, self._ack(command.id, "accepted"), final=False)
        self.running.add(command.id)
        self.agent.open_door(p.compartment, Purpose("ops", command_id=command.id))

    def finish_open(self, command_id: str, error: UnlockFailedError | None) -> None:
        self.running.discard(command_id)
        if error is None:
            ack = self._ack(command_id, "done", detail="unlock confirmed")
        else:
            ack = self._ack(command_id, "failed", "UNLOCK_FAILED", f"{error.code}: {error.message}")
        prior = self.store.command_ack(command_id)
        type_ = "open" if prior is not None else "?"
        self.store.record_command(command_id, type_, ack, final=True)
        self.agent.publisher.wake()
