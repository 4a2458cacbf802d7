"""Audit: hash-chained, append-only audit log with anchored chain heads.

Entries get seq, prev_hash, hash, ip and before/after states; existing rows are chained in id
order. `audit_chain` holds the head every append locks, `audit_anchors` the heads anchored on
chain. Triggers refuse UPDATE (of a sealed row), DELETE and TRUNCATE of the log, the anchors
and the head, and a deferred trigger refuses to commit an entry without its chain position.

Revision ID: 0016_audit_chain
Revises: 0015_order_paths
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tuanbox.audit.chain import GENESIS, Link, entry_hash

revision: str = "0016_audit_chain"
down_revision: str | None = "0015_order_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_APPEND_ONLY = """
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_log' THEN
    IF OLD.seq IS NULL THEN
      RETURN NEW;  -- the recording transaction seals its own entry as it commits
    END IF;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""
_FORWARD_ONLY = """
CREATE FUNCTION audit_chain_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.id = OLD.id AND NEW.seq >= OLD.seq THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit_chain only moves forward: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""
_SEALED = """
CREATE FUNCTION audit_log_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id AND seq IS NULL) THEN
    RAISE EXCEPTION 'audit_log entry % committed without its chain position', NEW.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$
"""
# One statement per execute: the driver's extended protocol takes one at a time.
_PG_TRIGGERS = (
    _APPEND_ONLY,
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
    """CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors
       FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    """CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
       FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
    _FORWARD_ONLY,
    """CREATE TRIGGER audit_chain_forward_only BEFORE UPDATE OR DELETE ON audit_chain
       FOR EACH ROW EXECUTE FUNCTION audit_chain_forward_only()""",
    """CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
       FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_forward_only()""",
    _SEALED,
    # Checked at COMMIT, after record()'s seal: an entry never commits without its seq.
    """CREATE CONSTRAINT TRIGGER audit_log_sealed AFTER INSERT ON audit_log
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_log_sealed()""",
)
# Dropping the tables drops their triggers; the log's stay until its functions go.
_PG_DROP = (
    "DROP TRIGGER IF EXISTS audit_log_sealed ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_sealed()",
    "DROP FUNCTION IF EXISTS audit_append_only() CASCADE",
    "DROP FUNCTION IF EXISTS audit_chain_forward_only() CASCADE",
)

# SQLite, the zero-setup default, gets the same refusals (a later batch rebuild of one of
# these tables would drop its triggers: such a migration must create them again).
_SQLITE_TRIGGERS = (
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log WHEN OLD.seq IS NOT NULL
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END""",
    """CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors
       BEGIN SELECT RAISE(ABORT, 'audit_anchors is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_anchors_no_delete BEFORE DELETE ON audit_anchors
       BEGIN SELECT RAISE(ABORT, 'audit_anchors is append-only: DELETE refused'); END""",
    """CREATE TRIGGER audit_chain_forward_only BEFORE UPDATE ON audit_chain
       WHEN NEW.id != OLD.id OR NEW.seq < OLD.seq
       BEGIN SELECT RAISE(ABORT, 'audit_chain only moves forward'); END""",
    """CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
       BEGIN SELECT RAISE(ABORT, 'audit_chain only moves forward: DELETE refused'); END""",
)
_SQLITE_TRIGGER_NAMES = (
    "audit_log_no_update",
    "audit_log_no_delete",
    "audit_anchors_no_update",
    "audit_anchors_no_delete",
    "audit_chain_forward_only",
    "audit_chain_no_delete",
)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", BigInt, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("ip", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("before_state", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("after_state", sa.JSON(), nullable=True))
        batch.create_unique_constraint(op.f("uq_audit_log_seq"), ["seq"])
        batch.create_check_constraint(
            op.f("ck_audit_log_sealed_together"),
            "(seq IS NULL AND prev_hash IS NULL AND hash IS NULL) OR "
            "(seq >= 1 AND prev_hash IS NOT NULL AND hash IS NOT NULL)",
        )
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])

    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", BigInt, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", BigInt, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("entries", BigInt, nullable=False),
        sa.Column("chain_id", BigInt, nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", BigInt, nullable=False),
        sa.Column("block_time", BigInt, nullable=False),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_anchors_seq")),
    )

    seq, head = _chain_existing_rows()
    op.bulk_insert(
        sa.table("audit_chain", sa.column("id"), sa.column("seq"), sa.column("hash")),
        [{"id": 1, "seq": seq, "hash": head}],
    )
    dialect = op.get_bind().dialect.name
    for statement in {"postgresql": _PG_TRIGGERS, "sqlite": _SQLITE_TRIGGERS}.get(dialect, ()):
        op.execute(statement)


def _chain_existing_rows() -> tuple[int, str]:
    """Entries written before the chain existed are chained in id order; (last seq, head)."""
    log = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor_id", sa.String()),
        sa.column("actor_role", sa.String()),
        sa.column("action", sa.String()),
        sa.column("subject_type", sa.String()),
        sa.column("subject_id", sa.String()),
        sa.column("reason", sa.String()),
        sa.column("details", sa.JSON()),
        sa.column("request_id", sa.String()),
    )
    conn = op.get_bind()
    seq, head, after_id = 0, GENESIS, None
    while True:
        query = sa.select(log).order_by(log.c.id).limit(1000)
        if after_id is not None:
            query = query.where(log.c.id > after_id)
        rows = conn.execute(query).mappings().all()
        if not rows:
            return seq, head
        updates = []
        for row in rows:
            seq += 1
            digest = entry_hash(
                Link(
                    seq=seq,
                    prev_hash=head,
                    at=row["at"],
                    actor_id=row["actor_id"],
                    actor_role=row["actor_role"],
                    ip=None,
                    action=row["action"],
                    subject_type=row["subject_type"],
                    subject_id=row["subject_id"],
                    reason=row["reason"],
                    details=row["details"],
                    before=None,
                    after=None,
                    request_id=row["request_id"],
                )
            )
            updates.append({"row_id": row["id"], "s": seq, "p": head, "h": digest})
            head = digest
        conn.execute(
            log.update()
            .where(log.c.id == sa.bindparam("row_id"))
            .values(seq=sa.bindparam("s"), prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")),
            updates,
        )
        after_id = rows[-1]["id"]


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for statement in _PG_DROP:
            op.execute(statement)
    elif dialect == "sqlite":
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("audit_anchors")
    op.drop_table("audit_chain")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f("ck_audit_log_sealed_together"), type_="check")
        batch.drop_constraint(op.f("uq_audit_log_seq"), type_="unique")
        batch.drop_column("after_state")
        batch.drop_column("before_state")
        batch.drop_column("ip")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
