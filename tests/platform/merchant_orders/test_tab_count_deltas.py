"""Tab counts without shared-row writes (migration 0036, `merchant_orders.counters`): order
transactions only append deltas, so two of them never wait on each other's counts (with
0024's upserted slots they deadlocked), compaction folds the deltas in one at a time, and
the counts stay exact — counters plus pending deltas equal a COUNT(*) GROUP BY of the orders
— under many concurrent transactions moving one merchant's orders in random order while
compactions and consistent reads run."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.conftest import make_settings, wait_replicated
from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.merchant_orders.fx import put_order
from tuanbox.db.engine import make_session_factory
from tuanbox.merchant_orders.counters import compact_tab_counts
from tuanbox.merchant_orders.listing import counted_tabs
from tuanbox.merchant_orders.tabs import Tab
from tuanbox.worker.app import BEAT_SCHEDULE, TASK_MODULES, create_celery

# (status, awaiting, picked up) landing in each of the seven tabs.
STATES: dict[Tab, tuple[str, str | None, bool]] = {
    Tab.PENDING_PAYMENT: ("pending_payment", None, False),
    Tab.GROUPING: ("paid", "group", False),
    Tab.TO_SHIP: ("confirmed", None, False),
    Tab.AWAITING_PICKUP: ("ready_for_pickup", None, False),
    Tab.COMPLETED: ("picked_up", None, True),
    Tab.AFTER_SALES: ("refunded", None, True),
    Tab.CLOSED: ("cancelled", None, False),
}

MOVE = text(
    "UPDATE orders SET status = :s, awaiting = :a,"
    " picked_up_at = CASE WHEN :p THEN now() END WHERE id = :id"
)

RECOUNT = text(
    "SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL), count(*)"
    " FROM orders GROUP BY 1, 2"
)


def _move(conn: Session, order_id: str, tab: Tab) -> None:
    status, awaiting, picked = STATES[tab]
    conn.execute(MOVE, {"s": status, "a": awaiting, "p": picked, "id": order_id})


def _recount(session: Session, merchant_id: str) -> dict[Tab, int]:
    counts = dict.fromkeys(Tab, 0)
    for m, tab, n in session.execute(RECOUNT):
        if m == merchant_id:
            counts[Tab(tab)] = int(n)
    return counts


@dataclass
class Shop:
    url: str
    merchants: list[str]
    orders: dict[str, list[str]] = field(default_factory=dict)  # merchant -> order ids
    sku_ids: dict[str, str] = field(default_factory=dict)
    user_id: str = ""


def _shop(url: str, engine: Engine, *, merchants: int, orders: int) -> Shop:
    factory = make_session_factory(engine, make_settings(database_url=url))
    with factory() as s:
        user = make_user(s)
        shop = Shop(url, [], user_id=user.id)
        for _ in range(merchants):
            merchant = make_merchant(s)
            sku = make_sku(s, make_product(s, merchant), stock=10_000)
            shop.merchants.append(merchant.id)
            shop.sku_ids[merchant.id] = sku.id
            shop.orders[merchant.id] = [
                put_order(s, merchant, status="pending_payment", sku=sku, user_id=user.id).id
                for _ in range(orders)
            ]
        s.commit()
    return shop


def _same_slot_transactions(engine: Engine) -> tuple[Session, Session]:
    """Two open transactions whose ids are equal modulo 1,024: under 0024's design they
    upserted the same counter rows (slot = txid_current() & 1023)."""
    a, b = Session(engine), Session(engine)
    slot = a.scalar(text("SELECT txid_current() & 1023"))
    for _ in range(50_000):
        if b.scalar(text("SELECT txid_current() & 1023")) == slot:
            return a, b
        b.rollback()
    raise AssertionError("no transaction id met the first one's slot")


def opposite_orders(engine: Engine, merchant_id: str, order_ids: list[str]) -> None:
    """Transaction A moves pending → closed, then to-ship → awaiting pickup; B meanwhile
    moves to-ship → completed, then pending → completed: each touches the other's tabs in
    the opposite order. With shared counter rows, A's second statement waits for B's and
    B's for A's (a deadlock; here the 2 s lock timeout ends it first)."""
    o1, o2, o3, o4 = order_ids
    with Session(engine) as setup:
        for order_id in (o2, o3):
            _move(setup, order_id, Tab.TO_SHIP)
        for order_id in (o1, o4):
            _move(setup, order_id, Tab.PENDING_PAYMENT)
        setup.commit()
    a, b = _same_slot_transactions(engine)
    try:
        for s in (a, b):
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
        _move(a, o1, Tab.CLOSED)
        _move(b, o2, Tab.COMPLETED)
        _move(a, o3, Tab.AWAITING_PICKUP)  # waited for B's to_ship counter under 0024
        _move(b, o4, Tab.COMPLETED)
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()


def test_order_transactions_of_one_merchant_never_wait_on_each_others_counts(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    url = fresh_database()
    engine = engines(url)
    shop = _shop(url, engine, merchants=1, orders=4)
    (merchant,) = shop.merchants
    opposite_orders(engine, merchant, shop.orders[merchant])
    with Session(engine) as s:
        counts = counted_tabs(s, merchant)
        assert counts == _recount(s, merchant)
        assert (counts[Tab.CLOSED], counts[Tab.AWAITING_PICKUP], counts[Tab.COMPLETED]) == (1, 1, 2)


def test_counts_are_exact_under_random_concurrent_moves_and_compactions(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    """8 writers x 25 transactions, each moving 2-6 of its orders (of two merchants, in
    random order and to random tabs, one statement each), sometimes inserting or deleting
    an order, a fifth rolled back; two compactors (small batches, so many partial
    compactions, and contending for the lock) and a reader checking, in REPEATABLE READ
    snapshots, that counters plus deltas equal a recount of the orders."""
    url = fresh_database()
    engine = engines(url, pool_size=12)
    shop = _shop(url, engine, merchants=2, orders=48)
    writers, rounds = 8, 25
    # Each writer owns 6 orders of each merchant: order rows are never shared, so any wait
    # or deadlock could only come from the counts.
    owned = [
        [oid for m in shop.merchants for oid in shop.orders[m][k::writers]] for k in range(writers)
    ]
    merchant_of = {oid: m for m in shop.merchants for oid in shop.orders[m]}
    errors: list[BaseException] = []
    done = threading.Event()
    stats = {"compactions": 0, "busy": 0, "folded": 0, "reads": 0, "commits": 0}
    start = threading.Barrier(writers + 3)
    settings = make_settings(database_url=url)

    def writer(k: int) -> None:
        rng = random.Random(k)
        mine = list(owned[k])
        try:
            start.wait()
            for _ in range(rounds):
                with Session(engine) as s:
                    s.execute(text("SET LOCAL lock_timeout = '5s'"))
                    for order_id in rng.sample(mine, rng.randint(2, 6)):
                        _move(s, order_id, rng.choice(list(Tab)))
                    if rng.random() < 0.3:
                        merchant = rng.choice(shop.merchants)
                        status, awaiting, picked = STATES[rng.choice(list(Tab))]
                        added = s.scalar(
                            text(
                                "INSERT INTO orders (id, user_id, merchant_id, sku_id, qty,"
                                " unit_price_cents, total_cents, paid_cents, refunded_cents,"
                                " discount_cents, delivery_fee_cents, status, kind, stock_held,"
                                " risk_hold, awaiting, picked_up_at, created_at, updated_at)"
                                " VALUES (gen_random_uuid()::text, :u, :m, :sku, 1, 100, 100,"
                                " 100, 0, 0, 0, :s, 'regular', false, false, :a,"
                                " CASE WHEN :p THEN now() END, now(), now()) RETURNING id"
                            ),
                            {"u": shop.user_id, "m": merchant, "sku": shop.sku_ids[merchant],
                             "s": status, "a": awaiting, "p": picked},
                        )  # fmt: skip
                    else:
                        added = None
                    gone = None
                    if rng.random() < 0.2 and len(mine) > 8:
                        gone = rng.choice(mine)
                        s.execute(text("DELETE FROM orders WHERE id = :id"), {"id": gone})
                    if rng.random() < 0.2:
                        s.rollback()
                        continue
                    s.commit()
                    stats["commits"] += 1
                    if added:
                        mine.append(added)
                        merchant_of[added] = merchant
                    if gone:
                        mine.remove(gone)
        except BaseException as exc:
            errors.append(exc)

    def compactor(batch: int) -> None:
        try:
            start.wait()
            factory = make_session_factory(engine, settings)
            while not done.is_set():
                with factory() as s:
                    moved = compact_tab_counts(s, batch=batch)
                    s.commit()
                if moved is None:
                    stats["busy"] += 1
                else:
                    stats["compactions"] += 1
                    stats["folded"] += moved
                time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            start.wait()
            rr = engine.execution_options(isolation_level="REPEATABLE READ")
            while not done.is_set():
                with Session(rr) as s:  # one snapshot for the read and the recount
                    for merchant in shop.merchants:
                        assert counted_tabs(s, merchant) == _recount(s, merchant), merchant
                stats["reads"] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    helpers = [
        threading.Thread(target=compactor, args=(7,)),
        threading.Thread(target=compactor, args=(50,)),
        threading.Thread(target=reader),
    ]
    for t in threads + helpers:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in helpers:
        t.join()
    assert errors == [], errors[:3]
    assert stats["commits"] > writers * rounds // 2
    assert stats["reads"] > 0 and stats["compactions"] > 0 and stats["folded"] > 0
    with Session(engine) as s:
        for merchant in shop.merchants:
            assert counted_tabs(s, merchant) == _recount(s, merchant)
        while compact_tab_counts(s, batch=1000):
            pass
        s.commit()
        assert s.scalar(text("SELECT count(*) FROM order_tab_deltas")) == 0
        folded = {
            (m, t): int(n)
            for m, t, n in s.execute(text("SELECT merchant_id, tab, n FROM order_tab_counts"))
            if n
        }
        assert folded == {(m, t): int(n) for m, t, n in s.execute(RECOUNT)}


def test_one_compaction_at_a_time_and_deltas_of_open_transactions_wait(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    url = fresh_database()
    engine = engines(url)
    shop = _shop(url, engine, merchants=1, orders=3)
    (merchant,) = shop.merchants
    o1, o2, _ = shop.orders[merchant]
    with Session(engine) as first, Session(engine) as second, Session(engine) as open_tx:
        _move(open_tx, o1, Tab.CLOSED)  # not committed: its delta is not the compactor's
        assert compact_tab_counts(first) == 3  # the three inserts (a statement each)
        assert compact_tab_counts(second) is None  # the lock is taken: nothing done
        second.rollback()
        first.commit()
        assert counted_tabs(second, merchant)[Tab.PENDING_PAYMENT] == 3
        second.rollback()
        open_tx.commit()
        _move(second, o2, Tab.TO_SHIP)
        second.commit()
        assert compact_tab_counts(first) == 4  # two moves: a -1 and a +1 each
        first.commit()
        assert counted_tabs(first, merchant) == _recount(first, merchant)
        assert first.scalar(text("SELECT count(*) FROM order_tab_deltas")) == 0


def test_compaction_task_is_scheduled_and_folds_every_delta(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    assert "tuanbox.merchant_orders.tasks" in TASK_MODULES
    entry = BEAT_SCHEDULE["merchant_orders.compact_tab_counts"]
    assert entry["task"] == "merchant_orders.compact_tab_counts"
    url = fresh_database()
    engine = engines(url)
    shop = _shop(url, engine, merchants=2, orders=5)
    import tuanbox.merchant_orders.tasks  # noqa: F401 - registers the shared task

    task = create_celery(make_settings(database_url=url)).tasks[
        "merchant_orders.compact_tab_counts"
    ]
    with Session(engine) as s:
        pending = s.scalar(text("SELECT count(*) FROM order_tab_deltas"))
    assert task.apply().get() == {"folded": pending, "busy": False}
    assert task.apply().get() == {"folded": 0, "busy": False}
    with Session(engine) as s:
        for merchant in shop.merchants:
            assert counted_tabs(s, merchant) == _recount(s, merchant)
            assert (
                s.scalar(
                    text("SELECT n FROM order_tab_counts WHERE merchant_id = :m AND tab = :t"),
                    {"m": merchant, "t": Tab.PENDING_PAYMENT.value},
                )
                == 5
            )


def test_the_replica_reads_exact_counts_before_and_after_compaction(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    """The console reads the counts on the streaming replica: the deltas are a logged table
    (an unlogged one would be empty there), so pending ones count on the standby too."""
    url = fresh_database()
    engine = engines(url)
    shop = _shop(url, engine, merchants=1, orders=4)
    (merchant,) = shop.merchants
    o1, o2, _, _ = shop.orders[merchant]
    with Session(engine) as s:
        _move(s, o1, Tab.CLOSED)
        _move(s, o2, Tab.GROUPING)
        s.commit()
        expected = _recount(s, merchant)
    assert expected[Tab.PENDING_PAYMENT] == 2
    replica = engines(wait_replicated(url))
    with Session(replica) as r:
        assert r.scalar(text("SELECT pg_is_in_recovery()")) is True
        assert r.scalar(text("SELECT count(*) FROM order_tab_deltas")) > 0
        assert counted_tabs(r, merchant) == expected
    with Session(engine) as s:
        assert compact_tab_counts(s)
        s.commit()
    wait_replicated(url)
    with Session(replica) as r:
        assert r.scalar(text("SELECT count(*) FROM order_tab_deltas")) == 0
        assert counted_tabs(r, merchant) == expected


def test_counter_and_delta_tables_match_their_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tuanbox.models import load_all_models

    tables = {"order_tab_counts", "order_tab_deltas"}

    def ours(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in tables

    metadata = load_all_models()
    assert set(metadata.tables) >= tables
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": ours}
        )
        assert compare_metadata(context, metadata) == []
