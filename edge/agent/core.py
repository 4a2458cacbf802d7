"""The locker agent's use cases, run on one thread that owns every piece of door state.

Other threads (paho, the board poller, the scanner reader, unlock workers) only ``post``
inputs to the agent's bounded inbox; the agent thread turns them into events, acks, state
snapshots and telemetry. Events go to the store's outbox first and are published from there.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.agent import schema
from edge.agent.commands import CommandProcessor
from edge.agent.doors import DoorFact, DoorTracker
from edge.agent.errors import PickupRejectedError, StoreError, UnlockFailedError
from edge.agent.keypad import code_target, load_limiter, save_limiter
from edge.agent.lockboard import LockBoard
from edge.agent.messages import (
    BoardPolled,
    CommandMessage,
    Input,
    Purpose,
    RuntimeConfig,
    ScannerLine,
    UnlockDone,
)
from edge.agent.pickup import armed_doors, check_qr, classify
from edge.agent.ports import Clock, Publisher, utc_now
from edge.agent.settings import EdgeSettings
from edge.agent.snapshot import build_snapshot, runtime_config
from edge.agent.store import Store
from edge.agent.telemetry import TelemetryBuffer
from edge.protocol.compartments import parse_compartment
from edge.protocol.envelopes import Event, EventType, StateSnapshot
from edge.protocol.kerong import BoardStatus
from edge.protocol.token import public_key_from_b64

log = logging.getLogger(__name__)


class LockerAgent:
    """The composition of rules around one locker; ``handle`` is callable directly in tests."""

    def __init__(
        self,
        settings: EdgeSettings,
        store: Store,
        board: LockBoard,
        publisher: Publisher,
        telemetry: TelemetryBuffer,
        *,
        boot_id: str,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.locker_id = settings.locker_id
        self.store = store
        self.board = board
        self.publisher = publisher
        self.telemetry = telemetry
        self.boot_id = boot_id
        self.clock = clock
        self.monotonic = monotonic
        self.inbox: queue.Queue[Input] = queue.Queue(maxsize=settings.agent_inbox_size)
        self.compartments = settings.compartment_map()
        where = {cid: parse_compartment(cid) for cid in self.compartments}
        self.runtime = self._load_runtime()
        self.doors = DoorTracker(where, self.runtime.door_left_open_seconds)
        # Why each door we opened is open; on disk, so a restart still reads its closing.
        self.purposes: dict[str, Purpose] = {
            cid: Purpose(**saved) for cid, saved in (store.get_json("open_purposes") or {}).items()
        }
        self.unlocking: set[str] = set()
        # QR unlocks a crash cut short (ledger says pending); settled on the first poll.
        self.interrupted = {p.compartment: p for p in store.pending_tokens()}
        self._stop = threading.Event()
        self._unlocks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="unlock")
        self.commands = CommandProcessor(self)

    # --- runtime config --------------------------------------------------------------

    def _load_runtime(self) -> RuntimeConfig:
        return runtime_config(self.store.get_json("runtime_config") or {}, self.settings)

    def save_runtime(self, changes: dict[str, Any]) -> None:
        saved = self.store.get_json("runtime_config") or {}
        saved.update(changes)
        self.store.set_json("runtime_config", saved)
        self.runtime = self._load_runtime()
        self.doors.left_open_seconds = self.runtime.door_left_open_seconds

    def public_key(self) -> Ed25519PublicKey | None:
        key = self.runtime.pickup_public_key
        return public_key_from_b64(key) if key else None

    # --- loop ------------------------------------------------------------------------

    def post(self, item: Input) -> bool:
        """Hand work to the agent thread; False (and logged) when the inbox is full."""
        try:
            self.inbox.put_nowait(item)
        except queue.Full:
            log.warning("agent inbox full, dropped %s", type(item).__name__)
            return False
        return True

    def stop(self) -> None:
        self._stop.set()
        self._unlocks.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        self.publish_state()
        while not self._stop.is_set():
            try:
                item = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.handle(item)
            except Exception:  # supervisor loop: one bad input must not stop the locker
                log.exception("agent failed to handle %s", type(item).__name__)

    def handle(self, item: Input) -> None:
        if isinstance(item, CommandMessage):
            self.commands.handle(item.payload)
        elif isinstance(item, ScannerLine):
            self.on_scan(item.text)
        elif isinstance(item, BoardPolled):
            self.on_poll(item.status, item.at)
        else:
            self.on_unlock_done(item)

    # --- events and state ------------------------------------------------------------

    def emit(self, type: EventType, payload: dict[str, Any]) -> Event:
        event = self.store.append_event(self.locker_id, type, payload, self.clock())
        self.publisher.wake()
        log.info("event %s seq=%d %s", type, event.seq, payload)
        return event

    def snapshot(self) -> StateSnapshot:
        return build_snapshot(
            locker_id=self.locker_id,
            boot_id=self.boot_id,
            at=self.clock(),
            compartments=self.compartments,
            views=self.doors.views,
            reservations=self.store.reservations(),
            pickups=self.store.pickups(),
        )

    def publish_state(self) -> None:
        self.publisher.publish_state(self.snapshot())

    # --- doors -----------------------------------------------------------------------

    def open_door(self, compartment: str, purpose: Purpose) -> Future[None]:
        """Unlock in the background; the result comes back as an UnlockDone input."""
        return self.open_doors([(compartment, purpose)])

    def open_doors(self, doors: list[tuple[str, Purpose]]) -> Future[None]:
        """Unlock one door after another in one background job (a split order's QR opens its
        compartments in order); each result comes back as its own UnlockDone input."""
        for compartment, purpose in doors:
            if self.purposes.get(compartment) != purpose:
                self._set_purpose(compartment, purpose)
            self.unlocking.add(compartment)

        def work() -> None:
            for compartment, purpose in doors:
                board, lock = parse_compartment(compartment)
                try:
                    status = self.board.unlock(
                        board,
                        lock,
                        confirm_s=self.runtime.unlock_confirm_s,
                        retries=self.settings.serial_unlock_retries,
                        stop=self._stop,
                    )
                except UnlockFailedError as exc:
                    self.post(UnlockDone(compartment, purpose, exc))
                    continue
                self.post(UnlockDone(compartment, purpose, None, status, self.monotonic()))

        return self._unlocks.submit(work)

    def on_unlock_done(self, done: UnlockDone) -> None:
        purpose = done.purpose
        if done.status is not None:
            self.on_poll(done.status, done.at)
        self.unlocking.discard(done.compartment)
        if done.error is None and purpose.token_id and purpose.method == "qr":
            self.store.confirm_token(purpose.token_id)
        if done.error is not None:
            if self.purposes.get(done.compartment) == purpose:
                self._drop_purpose(done.compartment)
            # A token opening several doors stays spent while any other of them is opening
            # or open for it.
            sharing = any(
                p.token_id == purpose.token_id
                for c, p in self.purposes.items()
                if c != done.compartment
            )
            if purpose.token_id and purpose.method == "qr" and not sharing:
                self.store.release_token(purpose.token_id)
            failed: dict[str, Any] = {
                "compartment": done.compartment,
                "purpose": purpose.kind,
                "code": done.error.code,
                "detail": done.error.message,
            }
            if purpose.order_id is not None:  # an ops open has no order
                failed["order_id"] = purpose.order_id
            self.emit("unlock_failed", failed)
        if purpose.command_id is not None:
            self.commands.finish_open(purpose.command_id, done.error)

    def _set_purpose(self, compartment: str, purpose: Purpose) -> None:
        self.purposes[compartment] = purpose
        self.store.set_json("open_purposes", {c: asdict(p) for c, p in self.purposes.items()})

    def _drop_purpose(self, compartment: str) -> None:
        self.purposes.pop(compartment, None)
        self.store.set_json("open_purposes", {c: asdict(p) for c, p in self.purposes.items()})

    def on_poll(self, status: BoardStatus, at: float) -> None:
        unseen = [cid for cid in self.purposes if cid not in self.doors.views]
        facts = self.doors.update(status, at)
        for fact in facts:
            self.on_door_fact(fact)
        for cid in [c for c in self.interrupted if c in self.doors.views]:
            self._settle_interrupted(cid)
        # After a restart: a door we had opened that was shut while the agent was down.
        for cid in unseen:
            view = self.doors.views.get(cid)
            if view is not None and not view.is_open:
                self._resolve(cid, view.item_present)
        if any(f.kind != "left_open" for f in facts) or unseen:
            self.publish_state()

    def _settle_interrupted(self, cid: str) -> None:
        """A QR unlock a crash cut short, read against the board's first status since.

        The board keeps no record of past unlocks, so the token counts as spent only on
        evidence that the door opened: the hook reads released now, or the parcel the
        infrared saw at the scan is gone (the door opened and shut while we were down; the
        pickup is then recorded below, as any door shut during a restart is). Otherwise the
        unlock never happened: the token is released for another scan. A door opened with the
        parcel left inside also lands here; opening it once more for that order costs nothing.
        """
        pending = self.interrupted.pop(cid)
        view = self.doors.views[cid]
        if view.is_open or (pending.item_seen and not view.item_present):
            self.store.confirm_token(pending.token_id)
            log.info("interrupted unlock of %s had opened; token %s spent", cid, pending.token_id)
            return
        purpose = self.purposes.get(cid)
        with self.store.transaction():
            self.store.release_token(pending.token_id)
            if purpose is not None and purpose.token_id == pending.token_id:
                self._drop_purpose(cid)
            self.emit(
                "unlock_failed",
                {
                    "compartment": cid,
                    "purpose": "pickup",
                    "order_id": pending.order_id,
                    "code": "INTERRUPTED",
                    "detail": "agent restarted before the door opened; the QR may be scanned again",
                },
            )

    def on_door_fact(self, fact: DoorFact) -> None:
        cid = fact.compartment
        purpose = self.purposes.get(cid)
        if fact.kind == "left_open":
            self.emit(
                "door_left_open", {"compartment": cid, "open_seconds": round(fact.open_seconds)}
            )
            return
        at_ms = int(self.clock().timestamp() * 1000)
        self.telemetry.append([schema.door(self.locker_id, cid, fact.kind == "opened", at_ms)])
        if fact.kind == "opened":
            payload: dict[str, Any] = {"compartment": cid, "item_present": fact.item_present}
            if purpose is not None:
                payload["purpose"] = purpose.kind
            self.emit("door_opened", payload)
            if purpose is None and cid not in self.unlocking:
                self.emit("tamper", {"compartment": cid, "reason": "DOOR_OPENED_WITHOUT_UNLOCK"})
            return
        self.emit("door_closed", {"compartment": cid, "item_present": fact.item_present})
        self._resolve(cid, fact.item_present)

    def _resolve(self, cid: str, item_present: bool) -> None:
        """A door we opened is shut again: was it a deposit, a pickup, or neither?"""
        purpose = self.purposes.get(cid)
        if purpose is None:
            return
        # The business event and the state change land together or not at all.
        with self.store.transaction():
            self._drop_purpose(cid)
            if purpose.kind == "deposit" and item_present:
                res = self.store.reservations().get(cid)
                if res is not None and res.order_id == purpose.order_id:
                    self.store.put_reservation(replace(res, deposited=True))
                self.emit("deposited", {"compartment": cid, "order_id": purpose.order_id})
            elif purpose.kind == "pickup" and not item_present:
                self.store.delete_pickup(cid)
                self.store.delete_reservation(cid)
                self.emit(
                    "picked_up",
                    {
                        "compartment": cid,
                        "order_id": purpose.order_id,
                        "token_id": purpose.token_id,
                        "method": purpose.method,
                    },
                )

    # --- scanner and keypad ----------------------------------------------------------

    def on_scan(self, line: str) -> None:
        try:
            self._scan(line)
        except PickupRejectedError as exc:
            self.emit("pickup_rejected", {"reason": exc.code, "detail": exc.message[:200]})

    def _scan(self, line: str) -> None:
        scanned = classify(line)
        now = self.clock()
        if scanned.kind == "qr":
            token, armed = check_qr(
                scanned.text,
                self.public_key(),
                locker_id=self.locker_id,
                now=now,
                pickups=self.store.pickups(),
                token_used=self.store.token_used,
            )
            doors = armed_doors(token, self.store.pickups())
            for door in doors:
                self._check_door_free(door.compartment)
            targets = [
                (d.compartment, Purpose("pickup", d.order_id, token.tid, "qr")) for d in doors
            ]
            view = self.doors.views.get(armed.compartment)
            # Pending token and door purpose in one commit, before any frame goes out.
            try:
                with self.store.transaction():
                    if not self.store.reserve_token(
                        token.tid,
                        token.oid,
                        token.cmp,
                        now,
                        item_seen=bool(view and view.item_present),
                    ):
                        raise PickupRejectedError("token was already used", code="TOKEN_USED")
                    for compartment, door_purpose in targets:
                        self._set_purpose(compartment, door_purpose)
            except StoreError:
                for compartment, door_purpose in targets:
                    if self.purposes.get(compartment) == door_purpose:
                        self.purposes.pop(compartment)  # never committed
                raise
            self.open_doors(targets)
            return
        limiter = load_limiter(
            self.store, self.runtime.fallback_max_attempts, self.settings.pickup_fallback_lockout_s
        )
        limiter.check(time.time())
        target = code_target(
            self.store, scanned.kind, scanned.text, locker_id=self.locker_id, now=now
        )
        if target is None:
            limiter.failed(time.time())
            save_limiter(self.store, limiter)
            raise PickupRejectedError("code does not match", code="CODE_WRONG")
        limiter.succeeded()
        save_limiter(self.store, limiter)
        self._check_door_free(target[0])
        self.open_door(*target)

    def _check_door_free(self, compartment: str) -> None:
        if compartment in self.unlocking:
            raise PickupRejectedError("that door is opening already", code="DOOR_BUSY")
