"""The locker's own records in the state database: the QR token ledger (single use across
crashes), the couriers' reservations and the pickups armed by the platform."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from edge.agent.errors import StoreError
from edge.agent.statedb import StateDb


@dataclass(frozen=True)
class Reservation:
    compartment: str
    order_id: str
    code_hash: str
    expires_at: datetime | None
    deposited: bool


@dataclass(frozen=True)
class PendingToken:
    """A QR token recorded before its unlock and not yet confirmed by the board."""

    token_id: str
    order_id: str
    compartment: str
    item_seen: bool  # the infrared bit said a parcel was there when the QR was scanned


@dataclass(frozen=True)
class ArmedPickup:
    compartment: str
    order_id: str
    token_id: str
    code_hash: str
    valid_until: datetime


class Ledger(StateDb):
    """Tokens, reservations and armed pickups, on the state database's connection."""

    # --- token ledger ------------------------------------------------------------------
    # A QR token is ``pending`` from just before its unlock until the board confirms the door
    # released, then ``used``. Either state refuses the token a second time. A ``pending`` row
    # found at start-up is an unlock cut short by a crash: the agent settles it against what
    # the board reads (see ``LockerAgent``), so a crash neither burns the token nor lets it
    # open the door twice.

    def use_token(self, token_id: str, order_id: str, compartment: str, at: datetime) -> bool:
        """Record a token as used; False if it already was (single use)."""
        return self._insert_token(token_id, order_id, compartment, at, "used", None)

    def reserve_token(
        self, token_id: str, order_id: str, compartment: str, at: datetime, *, item_seen: bool
    ) -> bool:
        """Record a token as ``pending`` before its unlock; False if it is already in the ledger."""
        return self._insert_token(token_id, order_id, compartment, at, "pending", item_seen)

    def _insert_token(
        self,
        token_id: str,
        order_id: str,
        compartment: str,
        at: datetime,
        state: str,
        item_seen: bool | None,
    ) -> bool:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO used_tokens"
                    " (token_id, order_id, compartment, used_at, state, item_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (token_id, order_id, compartment, at.isoformat(), state, item_seen),
                )
            except sqlite3.IntegrityError:
                return False
            except sqlite3.Error as exc:
                raise StoreError(f"state database: {exc}") from exc
        return True

    def confirm_token(self, token_id: str) -> None:
        """The board confirmed the unlock: the token is spent for good."""
        self._q("UPDATE used_tokens SET state = 'used' WHERE token_id = ?", (token_id,))

    def pending_tokens(self) -> list[PendingToken]:
        rows = self._q(
            "SELECT token_id, order_id, compartment, item_seen FROM used_tokens"
            " WHERE state = 'pending' ORDER BY used_at"
        )
        return [PendingToken(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def token_used(self, token_id: str) -> bool:
        """In the ledger at all, ``pending`` or ``used``."""
        return bool(self._q("SELECT 1 FROM used_tokens WHERE token_id = ?", (token_id,)))

    def release_token(self, token_id: str) -> None:
        """Forget a token whose door never opened, so the shopper can try again."""
        self._q("DELETE FROM used_tokens WHERE token_id = ?", (token_id,))

    # --- reservations and armed pickups ----------------------------------------------

    def put_reservation(self, r: Reservation) -> None:
        self._q(
            "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?, ?)",
            (
                r.compartment,
                r.order_id,
                r.code_hash,
                r.expires_at.isoformat() if r.expires_at else None,
                int(r.deposited),
            ),
        )

    def reservations(self) -> dict[str, Reservation]:
        rows = self._q("SELECT * FROM reservations")
        return {
            r[0]: Reservation(
                r[0], r[1], r[2], datetime.fromisoformat(r[3]) if r[3] else None, bool(r[4])
            )
            for r in rows
        }

    def delete_reservation(self, compartment: str) -> None:
        self._q("DELETE FROM reservations WHERE compartment = ?", (compartment,))

    def put_pickup(self, p: ArmedPickup) -> None:
        self._q(
            "INSERT OR REPLACE INTO pickups VALUES (?, ?, ?, ?, ?)",
            (p.compartment, p.order_id, p.token_id, p.code_hash, p.valid_until.isoformat()),
        )

    def pickups(self) -> dict[str, ArmedPickup]:
        rows = self._q("SELECT * FROM pickups")
        return {
            r[0]: ArmedPickup(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows
        }

    def delete_pickup(self, compartment: str) -> None:
        self._q("DELETE FROM pickups WHERE compartment = ?", (compartment,))
