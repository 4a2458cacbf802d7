"""Commands, pickups and deposits on the agent core, with fakes of our own ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.core import LockerAgent
from edge.agent.lockboard import LockBoard
from edge.agent.messages import BoardPolled, CommandMessage, ScannerLine
from edge.agent.ports import Publisher
from edge.agent.store import Store
from edge.agent.telemetry import TelemetryBuffer
from edge.protocol import kerong
from edge.protocol.envelopes import (
    Ack,
    Command,
    ConfigurePayload,
    Event,
    OpenPayload,
    StateSnapshot,
    SyncPayload,
    decode_ack,
    decode_event,
    encode,
)
from edge.protocol.kerong import BoardStatus
from edge.protocol.token import generate_keypair, public_key_to_b64
from tests.edge.agent.support import agent_settings, arm, assign, now, qr, wait_until


class FakeBoard(LockBoard):
    """One board whose locks release when told, unless stuck."""

    def __init__(self) -> None:
        self.hooks = [True] * 16
        self.items = [False] * 16
        self.stuck: set[int] = set()
        self.unlocks: list[tuple[int, int]] = []

    def read_status(self, board: int) -> BoardStatus:
        raw = kerong.status_reply(board, self.hooks, self.items)
        return kerong.parse_status(raw)

    def send_unlock(self, board: int, lock: int) -> None:
        self.unlocks.append((board, lock))
        if lock not in self.stuck:
            self.hooks[lock - 1] = False


class FakePublisher(Publisher):
    def __init__(self) -> None:
        self.states: list[StateSnapshot] = []
        self.wakes = 0

    def publish_state(self, snapshot: StateSnapshot) -> None:
        self.states.append(snapshot)

    def wake(self) -> None:
        self.wakes += 1

    @property
    def connected(self) -> bool:
        return True


class Rig:
    def __init__(self, tmp_path: Path, public_key: str, board: FakeBoard | None = None) -> None:
        self.settings = agent_settings(
            tmp_path, pickup_public_key=public_key, serial_unlock_confirm_s=0.2
        )
        self.store = Store(self.settings.db_path)
        self.board = board or FakeBoard()
        self.publisher = FakePublisher()
        self.agent = LockerAgent(
            self.settings,
            self.store,
            self.board,
            self.publisher,
            TelemetryBuffer(self.store, 1000),
            boot_id="boot1",
            monotonic=lambda: self.clock,
        )
        self.clock = 0.0
        self.poll()  # baseline

    @property
    def lid(self) -> str:
        return self.settings.locker_id

    def poll(self, dt: float = 0.1) -> None:
        self.clock += dt
        self.agent.handle(BoardPolled(self.board.read_status(0), self.clock))

    def command(self, command: Command | bytes) -> None:
        raw = command if isinstance(command, bytes) else encode(command)
        self.agent.handle(CommandMessage(raw))

    def scan(self, line: str) -> None:
        self.agent.handle(ScannerLine(line))

    def settle_unlock(self) -> None:
        """Run the background unlock's result through the agent, as its thread would."""
        self.agent.handle(self.agent.inbox.get(timeout=5))

    def outbox(self) -> tuple[list[Ack], list[Event]]:
        rows = self.store.outbox_after(0, 10_000)
        acks = [decode_ack(r.payload) for r in rows if r.kind == "ack"]
        events = [decode_event(r.payload) for r in rows if r.kind == "evt"]
        return acks, events

    def acks(self, command_id: str) -> list[tuple[str, str | None]]:
        return [(a.status, a.code) for a in self.outbox()[0] if a.command_id == command_id]

    def event_types(self) -> list[str]:
        return [e.type for e in self.outbox()[1]]


@pytest.fixture
def keypair() -> tuple[Ed25519PrivateKey, str]:
    private, public = generate_keypair()
    return private, public_key_to_b64(public)


@pytest.fixture
def rig(tmp_path: Path, keypair: tuple[Ed25519PrivateKey, str]) -> Iterator[Rig]:
    r = Rig(tmp_path, keypair[1])
    yield r
    r.agent.stop()
    r.store.close()


def test_command_delivered_twice_is_applied_once(rig: Rig) -> None:
    command = assign(rig.lid, "0-1", "order-1", "111111")
    rig.command(command)
    rig.command(command)
    assert rig.acks(command.id) == [("accepted", None), ("done", None), ("done", None)]
    first_done, again = [a for a in rig.outbox()[0] if a.status == "done"]
    assert first_done == again  # the very same ack, timestamp included
    # applied once: a second assign of the same compartment to another order is refused
    other = assign(rig.lid, "0-1", "order-2", "222222")
    rig.command(other)
    assert rig.acks(other.id) == [("rejected", "COMPARTMENT_BUSY")]


def test_expired_command_is_rejected(rig: Rig) -> None:
    payload = assign(rig.lid, "0-1", "o", "1").payload
    old = Command.new("assign", payload, issued_at=now() - timedelta(minutes=5), ttl_seconds=60)
    rig.command(old)
    assert rig.acks(old.id) == [("rejected", "EXPIRED")]
    assert rig.store.reservations() == {}


def test_invalid_command_with_id_gets_bad_command(rig: Rig) -> None:
    raw = json.dumps({"id": "not-validated", "type": "assign", "payload": {}}).encode()
    rig.command(raw)
    assert rig.acks("not-validated") == [("rejected", "BAD_COMMAND")]
    rig.command(b"\xff not json")  # no id: dropped, nothing to answer
    assert len(rig.outbox()[0]) == 1


def test_unknown_compartment_rejected(rig: Rig) -> None:
    command = assign(rig.lid, "9-1", "o", "1")
    rig.command(command)
    assert rig.acks(command.id) == [("rejected", "UNKNOWN_COMPARTMENT")]


def test_deposit_then_qr_pickup(rig: Rig, keypair: tuple[Ed25519PrivateKey, str]) -> None:
    rig.command(assign(rig.lid, "0-3", "order-7", "135790"))
    rig.scan("*135790")
    rig.settle_unlock()
    rig.poll()  # door swung open
    rig.board.items[2] = True
    rig.board.hooks[2] = True  # courier closes the door with the parcel inside
    rig.poll()
    assert rig.event_types() == ["door_opened", "door_closed", "deposited"]
    assert rig.store.reservations()["0-3"].deposited
    rig.command(arm(rig.lid, "0-3", "order-7", "tok-7"))
    rig.scan(qr(keypair[0], rig.lid, "0-3", "order-7", "tok-7"))
    rig.settle_unlock()
    rig.poll()
    rig.board.items[2] = False
    rig.board.hooks[2] = True
    rig.poll()
    events = rig.outbox()[1]
    assert [e.type for e in events][-3:] == ["door_opened", "door_closed", "picked_up"]
    assert events[-1].payload == {
        "compartment": "0-3", "order_id": "order-7", "token_id": "tok-7", "method": "qr"
    }  # fmt: skip
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert rig.store.pickups() == {}
    assert rig.publisher.states[-1].compartments[2].armed_order is None


def test_replayed_forged_and_foreign_qr_rejected(
    rig: Rig, keypair: tuple[Ed25519PrivateKey, str]
) -> None:
    rig.command(arm(rig.lid, "0-1", "o1", "t1"))
    good = qr(keypair[0], rig.lid, "0-1", "o1", "t1")
    rig.scan(good)
    rig.settle_unlock()
    rig.scan(good)  # replay while the door is open and after
    forged = qr(generate_keypair()[0], rig.lid, "0-1", "o1", "t1")
    rig.scan(forged)
    rig.scan(qr(keypair[0], "ELSEWHERE", "0-1", "o1", "t1"))
    rig.scan(qr(keypair[0], rig.lid, "0-2", "o9", "t9"))  # signed, but nothing armed there
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    rig.scan(tampered)
    rig.scan("hello")
    reasons = [e.payload["reason"] for e in rig.outbox()[1] if e.type == "pickup_rejected"]
    assert reasons == [
        "TOKEN_USED",
        "TOKEN_SIGNATURE",
        "TOKEN_WRONG_LOCKER",
        "NOT_ARMED",
        "TOKEN_SIGNATURE",
        "UNKNOWN_INPUT",
    ]
    assert rig.board.unlocks == [(0, 1)]  # only the genuine first scan opened a door


def test_fallback_code_and_lockout(rig: Rig) -> None:
    rig.command(arm(rig.lid, "0-4", "o4", "t4", code="246810"))
    for _ in range(rig.settings.pickup_fallback_max_attempts):
        rig.scan("#000000")
    rig.scan("#246810")  # right code, but the keypad is locked now
    reasons = [e.payload["reason"] for e in rig.outbox()[1] if e.type == "pickup_rejected"]
    assert reasons == ["CODE_WRONG"] * rig.settings.pickup_fallback_max_attempts + ["KEYPAD_LOCKED"]
    assert rig.board.unlocks == []
    rig.store.set_json("keypad", {"failures": 0, "locked_until": 0})  # lockout served
    rig.scan("#246810")
    rig.settle_unlock()
    assert rig.board.unlocks == [(0, 4)]


def test_open_command_done_or_failed(rig: Rig) -> None:
    ok = Command.new(
        "open", OpenPayload(compartment="0-5", reason="ops", operator="amy"),
        issued_at=now(), ttl_seconds=60,
    )  # fmt: skip
    rig.command(ok)
    rig.settle_unlock()
    assert rig.acks(ok.id) == [("accepted", None), ("done", None)]
    rig.board.stuck.add(6)
    stuck = Command.new(
        "open", OpenPayload(compartment="0-6", reason="ops", operator="amy"),
        issued_at=now(), ttl_seconds=60,
    )  # fmt: skip
    rig.command(stuck)
    rig.settle_unlock()
    assert rig.acks(stuck.id) == [("accepted", None), ("failed", "UNLOCK_FAILED")]
    failed = [e for e in rig.outbox()[1] if e.type == "unlock_failed"]
    assert failed[0].payload["compartment"] == "0-6"
    assert failed[0].payload["code"] == "UNLOCK_NOT_CONFIRMED"


def test_open_interrupted_by_restart_is_not_repeated(tmp_path: Path, keypair: tuple) -> None:
    first = Rig(tmp_path, keypair[1])
    command = Command.new(
        "open", OpenPayload(compartment="0-5", reason="ops", operator="amy"),
        issued_at=now(), ttl_seconds=60,
    )  # fmt: skip
    first.board.stuck.add(5)
    first.agent.commands.running.clear()
    first.store.record_command(
        command.id, "open", Ack(command_id=command.id, status="accepted", at=now()), final=False
    )
    first.agent.stop()
    first.store.close()
    second = Rig(tmp_path, keypair[1])  # same state dir: a restart
    second.command(command)
    assert second.acks(command.id)[-1] == ("failed", "INTERRUPTED")
    assert second.board.unlocks == []
    second.agent.stop()
    second.store.close()


def test_configure_and_sync(rig: Rig) -> None:
    new_key = public_key_to_b64(generate_keypair()[1])
    conf = Command.new(
        "configure", ConfigurePayload(pickup_public_key=new_key, door_left_open_seconds=1),
        issued_at=now(), ttl_seconds=60,
    )  # fmt: skip
    rig.command(conf)
    assert rig.acks(conf.id) == [("accepted", None), ("done", None)]
    assert rig.agent.runtime.pickup_public_key == new_key
    states = len(rig.publisher.states)
    sync = Command.new("sync", SyncPayload(), issued_at=now(), ttl_seconds=60)
    rig.command(sync)
    assert len(rig.publisher.states) == states + 1
    # door_left_open now fires after 1 s, once per opening
    rig.board.hooks[0] = False
    rig.poll()
    rig.poll(0.6)
    rig.poll(0.6)
    rig.poll(0.6)
    types = rig.event_types()
    assert types.count("door_left_open") == 1
    assert "tamper" in types  # nobody unlocked it


def test_pickup_closed_while_agent_was_down_is_still_reported(
    tmp_path: Path, keypair: tuple[Ed25519PrivateKey, str]
) -> None:
    first = Rig(tmp_path, keypair[1])
    first.command(arm(first.lid, "0-8", "o8", "t8"))
    first.board.items[7] = True
    first.scan(qr(keypair[0], first.lid, "0-8", "o8", "t8"))
    first.settle_unlock()
    first.agent.stop()
    first.store.close()  # the agent dies with the door open
    # the shopper takes the parcel and shuts the door while the agent is down
    first.board.items[7] = False
    first.board.hooks[7] = True
    second = Rig(tmp_path, keypair[1], board=first.board)  # first poll inside
    picked = [e for e in second.outbox()[1] if e.type == "picked_up"]
    assert [e.payload["order_id"] for e in picked] == ["o8"]
    assert second.store.pickups() == {}
    second.agent.stop()
    second.store.close()


def test_qr_token_is_pending_until_the_board_confirms(
    rig: Rig, keypair: tuple[Ed25519PrivateKey, str]
) -> None:
    rig.command(arm(rig.lid, "0-4", "o4", "t4"))
    token = qr(keypair[0], rig.lid, "0-4", "o4", "t4")
    rig.board.stuck.add(4)
    rig.scan(token)
    assert [p.token_id for p in rig.store.pending_tokens()] == ["t4"]
    rig.settle_unlock()  # never confirmed: released for another try
    assert rig.store.pending_tokens() == [] and not rig.store.token_used("t4")
    rig.board.stuck.clear()
    rig.scan(token)
    rig.settle_unlock()
    assert rig.store.pending_tokens() == [] and rig.store.token_used("t4")


@pytest.mark.parametrize(
    ("lock_acted", "parcel", "spent"),
    [
        (False, True, False),  # the frame never acted: parcel still there, token released
        (False, False, False),  # no evidence the door opened (no parcel seen): released
        (True, True, True),  # the hook reads released: the door did open, token spent
    ],
)
def test_restart_settles_a_qr_unlock_cut_short(
    tmp_path: Path,
    keypair: tuple[Ed25519PrivateKey, str],
    lock_acted: bool,
    parcel: bool,
    spent: bool,
) -> None:
    first = Rig(tmp_path, keypair[1])
    first.board.items[5] = parcel
    first.poll()
    first.command(arm(first.lid, "0-6", "o6", "t6"))
    if not lock_acted:
        first.board.stuck.add(6)
    first.scan(qr(keypair[0], first.lid, "0-6", "o6", "t6"))
    wait_until(lambda: first.board.unlocks, 5, "the unlock frame")
    first.agent.stop()  # dies before the unlock's outcome reaches the agent thread
    wait_until(lambda: not first.agent.inbox.empty(), 5, "the unlock worker to give up")
    first.store.close()
    first.board.stuck.clear()
    second = Rig(tmp_path, keypair[1], board=first.board)  # first poll settles it
    try:
        assert second.store.pending_tokens() == []
        assert second.store.token_used("t6") is spent
        failed = [e.payload for e in second.outbox()[1] if e.type == "unlock_failed"]
        assert [(f["code"], f["order_id"]) for f in failed] == (
            [] if spent else [("INTERRUPTED", "o6")]
        )
        if not spent:  # the shopper scans again and the door opens
            second.scan(qr(keypair[0], second.lid, "0-6", "o6", "t6"))
            second.settle_unlock()
            assert second.store.token_used("t6")
    finally:
        second.agent.stop()
        second.store.close()


def test_one_qr_opens_every_compartment_of_a_split_order_in_order(
    rig: Rig, keypair: tuple[Ed25519PrivateKey, str]
) -> None:
    from edge.protocol.token import PickupToken, sign_token

    for label, part in [("0-13", "part-1"), ("0-14", "part-2"), ("0-9", "part-3")]:
        rig.command(arm(rig.lid, label, part, "tok-split"))
    issued = int(now().timestamp())
    token = sign_token(keypair[0], PickupToken(tid="tok-split", lid=rig.lid, cmp="0-13",
                                               oid="part-1", exp=issued + 3600, iat=issued,
                                               more=("0-14", "0-9")))  # fmt: skip
    # Armed for only two of its three doors: nothing opens.
    partial = sign_token(keypair[0], PickupToken(tid="tok-split", lid=rig.lid, cmp="0-13",
                                                 oid="part-1", exp=issued + 3600, iat=issued,
                                                 more=("0-14", "0-15")))  # fmt: skip
    rig.scan(partial)
    assert rig.board.unlocks == []
    rig.scan(token)
    for _ in range(3):
        rig.settle_unlock()
    assert rig.board.unlocks == [(0, 13), (0, 14), (0, 9)]
    rig.scan(token)  # spent
    assert rig.board.unlocks == [(0, 13), (0, 14), (0, 9)]
    rig.poll()
    for lock in (13, 14, 9):
        rig.board.hooks[lock - 1] = True  # emptied and shut, one by one
        rig.poll()
    events = rig.outbox()[1]
    picked = [e.payload for e in events if e.type == "picked_up"]
    assert [(p["compartment"], p["order_id"], p["token_id"]) for p in picked] == [
        ("0-13", "part-1", "tok-split"), ("0-14", "part-2", "tok-split"),
        ("0-9", "part-3", "tok-split"),
    ]  # fmt: skip
    reasons = [e.payload["reason"] for e in events if e.type == "pickup_rejected"]
    assert reasons == ["NOT_ARMED", "TOKEN_USED"]
    assert rig.store.pickups() == {}
