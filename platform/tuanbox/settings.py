"""Platform settings (env prefix TUANBOX_), read once by each entry point and passed down."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values shipped in .env.example and docker-compose.yml. They are fine on a developer's
# laptop and must never reach production, so the validator below refuses them there.
EXAMPLE_SECRETS = frozenset(
    {
        "change-me",
        "dev-secret-key-change-me",
        "dev-pii-key-change-me-000000000000000000000",
        "dev-webhook-secret-change-me",
    }
)
# Payment providers the platform has adapters for; `sim` is the bundled simulator.
PAYMENT_PROVIDERS = ("sim", "wechat")

# Production refuses a signing or encryption secret shorter than this (256 bits).
MIN_SECRET_BYTES = 32

# Messages that carry a code the recipient must receive: the gateway needs a template for each.
SMS_REQUIRED_TEMPLATES = ("otp", "erasure_code", "pickup_ready")


class Settings(BaseSettings):
    """Every knob of the platform processes (api, worker, beat, bridge, demo)."""

    model_config = SettingsConfigDict(
        env_prefix="TUANBOX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    database_url: str = "sqlite:///var/tuanbox.sqlite3"
    # Optional read replica for catalog pages and reports; never used for read-your-write.
    database_replica_url: str | None = None
    # /ops warns when the replica is this far behind (catalog pages and reports that old).
    replica_lag_warn_s: float = Field(default=5.0, gt=0, le=3600)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # `tuanbox run` (`make run`) gives every process it starts this Redis instead of
    # redis_url: its own database, so a `make test` at the same time (database 0) shares no
    # Celery queue, cache, counter or rate-limit key with it.
    run_redis_url: str = Field(default="redis://127.0.0.1:6379/1", max_length=500)
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    influx_url: str | None = "http://127.0.0.1:8086"
    chain_rpc_url: str | None = "http://127.0.0.1:8545"
    readiness_timeout_s: float = Field(default=1.5, gt=0, le=10)

    secret_key: SecretStr = SecretStr("dev-secret-key-change-me")
    pii_key: SecretStr = SecretStr("dev-pii-key-change-me-000000000000000000000")
    # Prefixes every ciphertext (`{key_id}:…`); bounded so an encrypted phone fits its column.
    pii_key_id: str = Field(default="k1", min_length=1, max_length=32, pattern=r"^[^:]+$")
    payment_webhook_secret: SecretStr = SecretStr("dev-webhook-secret-change-me")
    # Base64 of a raw Ed25519 private key that signs pickup QR tokens; generated when empty
    # in development, required in production.
    pickup_signing_key: SecretStr | None = None

    # Commerce (accounts, catalog, orders, payments, returns, rate limits).
    # Older PII keys by key id (JSON object), kept so ciphertext under a retired key still reads.
    pii_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # Key rotation (`tuanbox pii rotate`, task `pii.rotate`): rows re-encrypted per transaction,
    # and how long one task runs before it re-queues itself (a worker is not held for hours).
    pii_rotate_batch: int = Field(default=500, gt=0, le=10000)
    pii_rotate_budget_s: float = Field(default=60.0, gt=0, le=3600)
    # GET /api/v1/me/export per shopper (it reads everything of theirs).
    export_per_user_per_hour: int = Field(default=5, gt=0, le=1000)
    access_token_ttl_s: int = Field(default=900, gt=0)
    refresh_token_ttl_s: int = Field(default=30 * 86400, gt=0)
    otp_ttl_s: int = Field(default=300, gt=0)
    otp_max_attempts: int = Field(default=5, gt=0)
    order_pay_timeout_s: int = Field(default=900, gt=0)
    return_window_days: int = Field(default=7, ge=0)
    # Coupons and points (`tuanbox.coupons`, `tuanbox.points`): cents one point takes off at
    # checkout, the share of an order points may pay, and the quiet spell a wake-up coupon's
    # rule looks for.
    points_cash_cents_per_point: int = Field(default=1, gt=0, le=100)
    points_max_order_share_pct: int = Field(default=50, ge=0, le=99)
    coupon_dormant_days: int = Field(default=30, gt=0, le=3650)
    # Paid membership (`tuanbox.membership`): price and length of a term, and how long before
    # everyone else members may enter a flash sale. Growth (`tuanbox.growth`): the stations'
    # time zone decides where a leaderboard week or month begins (TUANBOX_STATION_TIMEZONE).
    membership_price_cents: int = Field(default=9900, gt=0, le=10_000_000)
    membership_days: int = Field(default=365, gt=0, le=3660)
    membership_early_access_s: int = Field(default=600, ge=0, le=86_400)
    # Delivery to the locker (`tuanbox.membership.pricing`): the fee an order pays on top of
    # its goods, waived for members and when the goods reach the threshold (满¥X免配送费;
    # 0: no threshold). 0 charges no fee at all.
    delivery_fee_cents: int = Field(default=0, ge=0, le=100_000)
    free_delivery_over_cents: int = Field(default=0, ge=0, le=10_000_000)
    # Segment pushes (`tuanbox.segments`): at most this many pushes reach one shopper per
    # rolling window; an order paid within the conversion window after a push converts it.
    push_per_user_limit: int = Field(default=1, gt=0, le=100)
    push_window_s: int = Field(default=86_400, gt=0, le=30 * 86_400)
    push_conversion_days: int = Field(default=7, gt=0, le=90)
    # Experiments (`tuanbox.experiments`): exposures counted in Redis under this prefix and
    # flushed to the database at this period; arms with fewer exposures get a warning.
    experiments_prefix: str = Field(default="tuanbox:exp:", min_length=1, max_length=64)
    experiments_flush_s: float = Field(default=30.0, gt=0, le=3600)
    experiments_min_sample: int = Field(default=100, gt=0, le=10_000_000)
    media_dir: str = "var/media"
    idempotency_ttl_s: int = Field(default=86400, gt=0)
    # A claim older than this is taken as abandoned by a crashed request and may be re-run.
    idempotency_stale_s: int = Field(default=60, gt=0)
    refund_retry_base_s: float = Field(default=5.0, gt=0)
    refund_retry_max_s: float = Field(default=600.0, gt=0)
    # Failed attempts after which a refund is `failed` for good: an ops alert, then a person
    # retries it or records how it was paid (POST /api/v1/refunds/{id}/retry | /resolve).
    refund_max_attempts: int = Field(default=20, gt=0, le=1000)
    # Enabled payment providers, comma-separated; the first is the checkout default. Empty
    # means `sim` in development and test; production must name a real one (`sim` refused).
    payment_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # WeChat Pay API v3 (provider `wechat`, H5 checkout for phone browsers).
    wechatpay_mchid: str | None = Field(default=None, max_length=32)
    wechatpay_appid: str | None = Field(default=None, max_length=32)
    # Serial number of the merchant API certificate (hex), sent with every signed request.
    wechatpay_merchant_serial_no: str | None = Field(default=None, max_length=64)
    # The merchant API private key as PEM, or a file holding it (one of the two).
    wechatpay_private_key: SecretStr | None = None
    wechatpay_private_key_file: str | None = None
    # 32-byte APIv3 key: decrypts notification resources and downloaded certificates.
    wechatpay_apiv3_key: SecretStr | None = None
    # Where WeChat Pay POSTs notifications; default {public_base_url}/api/v1/payments/wechat/webhook
    wechatpay_notify_url: str | None = None
    # Tests point this at a local fake gateway; production keeps WeChat's host.
    wechatpay_gateway_url: str = "https://api.mch.weixin.qq.com"
    # The cashier an order's h5_url opens; the pay form's CSP (form-action) lets it go there.
    wechatpay_h5_url: str = "https://wx.tenpay.com"
    # Platform certificates: cached here once downloaded (and checked) from /v3/certificates.
    wechatpay_platform_cert_dir: str | None = "var/wechatpay/certs"
    # Or WeChat Pay's platform public key (PEM) with its id, for merchants moved off certificates.
    wechatpay_platform_public_key: str | None = None
    wechatpay_platform_public_key_id: str | None = Field(default=None, max_length=64)
    wechatpay_timeout_s: float = Field(default=10.0, gt=0, le=60)
    simpay_webhook_url: str | None = None
    # Chaos knob of the bundled gateway: share of refund calls that fail (drills, demos).
    simpay_refund_failure_rate: float = Field(default=0.0, ge=0, le=1)
    # Redis key prefix of rate-limit windows (tests give each run its own).
    rate_limit_prefix: str = "tuanbox:rl:"
    # Sign-in limits go per phone and per device (X-Device-ID) first and per IP generously:
    # a carrier NAT puts thousands of shoppers behind one address at the start of a sale.
    otp_per_phone_per_hour: int = Field(default=5, gt=0)
    otp_per_device_per_hour: int = Field(default=10, gt=0)
    otp_per_ip_per_hour: int = Field(default=300, gt=0)
    auth_token_per_phone_per_min: int = Field(default=10, gt=0)
    auth_token_per_device_per_min: int = Field(default=30, gt=0)
    # Shared by every grant of /api/v1/auth/token and by /ops/login (one bucket per IP).
    auth_token_per_ip_per_min: int = Field(default=600, gt=0)
    # Password lockout per login (API and /ops alike): this many failures within the window
    # lock the login for signin_lockout_s, answered like any failure, with one ops alert.
    signin_max_failures: int = Field(default=10, gt=0, le=1000)
    signin_failure_window_s: int = Field(default=900, gt=0)
    signin_lockout_s: int = Field(default=900, gt=0)
    # Phones are stored in E.164; numbers typed without a country code are read in this region.
    phone_default_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    group_join_per_user_per_min: int = Field(default=20, gt=0)
    group_join_per_ip_per_min: int = Field(default=600, gt=0)
    orders_create_per_user_per_min: int = Field(default=30, gt=0)
    orders_create_per_ip_per_min: int = Field(default=120, gt=0)

    # Text messages (OTP, pickup codes). `gateway`: the HTTP SMS gateway below (Aliyun
    # Dysms SendSms shape), required in production. `inbox`: nothing leaves the machine, codes
    # are kept encrypted for the development inbox (/dev/inbox); refused in production.
    # Empty: `gateway` in production, `inbox` in development and test.
    sms_backend: Literal["gateway", "inbox"] | None = None
    sms_gateway_url: str | None = Field(default=None, max_length=500)
    sms_access_key_id: str | None = Field(default=None, max_length=128)
    sms_access_key_secret: SecretStr | None = None
    # The approved signature (签名) printed at the start of every text.
    sms_sign_name: str | None = Field(default=None, max_length=64)
    # Our template name -> the gateway's approved template code (JSON), e.g.
    # {"otp": "SMS_001", "erasure_code": "SMS_003", "pickup_ready": "SMS_002"}; those three
    # are required (wording to register: tuanbox.notifications.wording).
    sms_templates: dict[str, str] = Field(default_factory=dict)
    sms_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Attempts per message when the gateway times out or answers 5xx (then SMS_UNAVAILABLE).
    sms_max_attempts: int = Field(default=3, ge=1, le=5)
    # Pause before the second attempt, doubled before each later one.
    sms_retry_backoff_s: float = Field(default=0.5, ge=0, le=10)
    # Texts decided in a transaction (the pickup code) wait in `sms_outbox` and the worker
    # sends them after the commit: rounds before giving up (state `failed`), and the pause
    # after the first failed round, doubled after each later one up to the cap.
    sms_outbox_max_attempts: int = Field(default=10, ge=1, le=100)
    sms_outbox_backoff_s: float = Field(default=30.0, ge=0, le=3600)
    sms_outbox_backoff_max_s: float = Field(default=3600.0, ge=0, le=86400)

    # Fulfilment and dispatch (lockers, bridge).
    pickup_signing_key_file: str = "var/pickup_signing_key"  # development only, when key unset
    pickup_deadline_h: float = Field(default=48.0, gt=0)
    pickup_reminder_before_h: float = Field(default=6.0, ge=0)
    # Cold chain: a chilled or frozen compartment that has never sent a reading this many
    # minutes after it was provisioned raises one sensor_silent alert (resolved by its first
    # reading); compartments that did report use their zone's silence_minutes (TELEMETRY_RULES).
    coldchain_silence_minutes: float = Field(default=10.0, gt=0, le=7 * 24 * 60)
    command_ttl_s: int = Field(default=6 * 3600, gt=0)
    command_ack_timeout_s: float = Field(default=10.0, gt=0)
    command_retry_max_s: float = Field(default=300.0, gt=0)
    # A command acked "accepted" and not "done" (or failed) within this is stalled: the locker
    # is sent a sync, the command is re-sent once and ops are alerted.
    command_accepted_timeout_s: float = Field(default=120.0, gt=0)
    # Lifetime of the `configure` queued when a locker is provisioned: it waits in the outbox
    # until the locker first comes online, which may be days after it is registered.
    locker_configure_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)
    # A locker whose state snapshot disagrees with the platform is asked for a fresh one (sync)
    # at most this often, so a lasting disagreement does not turn into a sync loop.
    locker_sync_min_interval_s: float = Field(default=60.0, gt=0)
    # Unacked commands allowed at once (all bridges); keep below the broker's per-client queue.
    command_max_in_flight: int = Field(default=500, gt=0)
    bridge_share_group: str = "bridge"
    # Mosquitto 2.0 does not restore shared subscriptions after a broker restart, so locker
    # messages sent before any bridge re-subscribes would be lost. A durable bridge holds
    # plain persistent subscriptions instead (the broker keeps them and queues for it);
    # run one durable bridge and any number of shared-only ones (`tuanbox bridge --shared`).
    bridge_durable: bool = True
    bridge_batch: int = Field(default=100, gt=0, le=10000)
    # MQTT QoS 1 messages a bridge may have unacknowledged each way: its MQTT 5 Receive Maximum,
    # and its own publishes (set the broker's max_inflight_messages at least as high; the bridge
    # warns when the broker announces less). Inbound messages are acknowledged only after their
    # transaction commits, so this bounds how many one transaction applies: under MQTT 3.1.1,
    # Mosquitto's default of 20 made a burst of 4,000 acks 200 transactions.
    bridge_mqtt_inflight: int = Field(default=1000, gt=0, le=65535)
    # Inbound workers of one bridge, each with its own transactions; a locker's messages all go
    # to the same worker (by its id), so they are applied in the order they arrived. Since a
    # batch of acks is one statement, more workers mostly mean smaller batches and more
    # commits: a 2,000-command burst ran fastest with 1-2 (bench/RESULTS.md, 08:35-08:41).
    bridge_inbound_workers: int = Field(default=2, gt=0, le=64)
    # Outbox poll of a bridge that PostgreSQL LISTEN/NOTIFY wakes on every commit that queues
    # commands (it wakes sooner for a due retry); on SQLite, or while its LISTEN connection is
    # down, a bridge polls every 50 ms instead.
    bridge_poll_s: float = Field(default=1.0, gt=0, le=300)
    # Non-transient failures of one inbound message before it becomes a dead letter (acked).
    bridge_max_apply_attempts: int = Field(default=5, gt=0)
    locker_offline_after_s: int = Field(default=180, gt=0)
    # Delivery waves (`tuanbox.fulfilment.schedule`), for stations that set none of their own:
    # orders confirmed before the local cutoff go out in the next departure; compartments are
    # allocated this long before the departure (never before the cutoff).
    station_timezone: str = Field(default="Asia/Shanghai", max_length=64)
    wave_cutoff: str = Field(default="22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    wave_departure: str = Field(default="10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    wave_allocate_lead_s: int = Field(default=5400, ge=0, le=7 * 86400)

    # Group-buy, flash sales, pre-sale.
    # A Redis reservation with no DB row after this long is an orphan and is given back.
    flash_orphan_grace_s: int = Field(default=30, gt=0)
    flash_per_user_per_10s: int = Field(default=5, gt=0)
    flash_per_ip_per_10s: int = Field(default=50, gt=0)
    # Where a flash-sale winner's order is written: `request` (committed inside the
    # reservation request, before its 201) or `stream` (queued on the sale's Redis Stream by
    # the admission script, answered at once, written in batches by `tuanbox flash-orders`;
    # until then the order lives only in Redis). bench/flash_sale.py measures both.
    flash_order_writes: Literal["request", "stream"] = "request"
    # Stream writes: entries per batch transaction, and how long an entry may sit unacked
    # with one consumer (say it died mid-batch) before another consumer takes it over.
    flash_stream_batch: int = Field(default=200, gt=0, le=10000)
    flash_stream_claim_idle_s: float = Field(default=30.0, gt=0, le=3600)
    # Where a group join is written: `request` (seat, order and answer in the request's
    # transaction, 201) or `stream` (a join with an Idempotency-Key is admitted by a Redis
    # script holding the group's seats, answered 202 at once and written in batches by
    # `tuanbox group-joins`; until then it lives only in Redis). bench/group_join.py.
    group_join_writes: Literal["request", "stream"] = "request"
    # Production with either stream writes: `tuanbox api` refuses to start unless Redis reports
    # appendonly yes and appendfsync always (tuanbox.api.redis_durability). True lets it start
    # when Redis refuses CONFIG GET (renamed or denied): the operator vouches for its config.
    stream_redis_durability_assumed: bool = False
    group_join_stream_batch: int = Field(default=200, gt=0, le=10000)
    group_join_claim_idle_s: float = Field(default=30.0, gt=0, le=3600)
    # A shopper who pressed "remind me" on an upcoming sale is told this many minutes before
    # it starts (the flashsale.send_reminders sweep runs every 30 s; a later press, sooner).
    flash_reminder_before_min: int = Field(default=10, ge=1, le=7 * 24 * 60)

    # Risk control (`tuanbox.risk`): rules score sign-ins, orders, joins and payments; a total
    # at the review score holds the order for ops (/ops/risk), at the block score refuses it.
    risk_enabled: bool = True
    risk_review_score: int = Field(default=50, ge=1, le=1000)
    risk_block_score: int = Field(default=80, ge=1, le=1000)
    # Overrides of the default rules, {rule: {score, threshold, window_s, enabled, …}} as JSON;
    # the file (YAML or JSON, same shape) is read first and this wins over it (README).
    risk_rules: dict[str, dict[str, int | float | bool]] = Field(default_factory=dict)
    risk_rules_file: str | None = None
    # Signals older than this are deleted by the beat job `risk.prune` (longest window: 90 d).
    risk_signal_retention_days: int = Field(default=90, ge=1, le=3650)

    # Audit trail: beat anchors the audit chain's head on chain this often, through the
    # traceability Anchor contract and signer (TRACE_*); 0 turns anchoring off.
    audit_anchor_interval_s: float = Field(default=3600.0, ge=0, le=31 * 86400)

    # Shopper pages: how long the home and campaign pages stay in the Redis page cache at
    # most (any change to what they show invalidates them sooner); 0 turns the cache off.
    shop_cache_ttl_s: int = Field(default=60, ge=0, le=86400)
    # Redis key prefix of that cache and its version counter (tests give each their own).
    shop_cache_prefix: str = Field(default="tuanbox:shop:", max_length=100)
    # Recommendations (`tuanbox.recommend`): pairs bought by fewer shoppers are ignored;
    # popularity counts the station's picked-up orders of the last days; its weight in the
    # blend with "people like you also bought"; how many cards a block shows.
    recommend_min_support: int = Field(default=2, ge=1, le=1000)
    recommend_popularity_days: int = Field(default=30, gt=0, le=365)
    recommend_popularity_weight: float = Field(default=0.3, ge=0, le=10)
    recommend_max_items: int = Field(default=6, gt=0, le=20)

    # Reports (`tuanbox.reports`): beat refreshes the daily rollups from the orders changed
    # since its watermark, re-reading this much before it (transactions that committed late),
    # and moves the counted campaign page views from Redis (under this prefix) to the table.
    reports_refresh_s: float = Field(default=60.0, gt=0, le=86400)
    reports_overlap_s: int = Field(default=300, ge=0, le=86400)
    reports_views_flush_s: float = Field(default=60.0, gt=0, le=86400)
    reports_views_prefix: str = Field(default="tuanbox:views:", max_length=100)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    # OpenAPI document and Swagger UI under /api/v1; unset: on, except in production.
    api_docs: bool | None = None
    # Reverse proxies / load balancers (IPs or CIDRs, comma-separated) whose X-Forwarded-For
    # and X-Forwarded-Proto `tuanbox api` believes: the client is then the rightmost address
    # of X-Forwarded-For that is not one of them. Empty (the default): no proxy is trusted,
    # the client is the TCP peer and a forwarded header is ignored.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, list):
            return value
        proxies = []
        for part in (str(p).strip() for p in parts):
            if not part:
                continue
            try:
                proxies.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise ValueError(
                    f"TUANBOX_TRUSTED_PROXIES: {part!r} is not an IP address or CIDR "
                    "(list the proxies; '*' would let anyone forge X-Forwarded-For)"
                ) from None
        return proxies

    @field_validator("payment_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def default_payment_provider(self) -> str:
        """The provider a checkout uses when the shopper names none."""
        return self.payment_providers[0]

    @property
    def simpay_enabled(self) -> bool:
        """The bundled simulator (provider, hosted page) exists only outside production."""
        return self.env != "production" and "sim" in self.payment_providers

    @property
    def wechatpay_notify_url_resolved(self) -> str:
        return (
            self.wechatpay_notify_url
            or f"{self.public_base_url.rstrip('/')}/api/v1/payments/wechat/webhook"
        )

    @field_validator("station_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value

    @model_validator(mode="after")
    def _refuse_example_secrets(self) -> Settings:
        if self.env == "development":
            return self
        for name in ("secret_key", "pii_key", "payment_webhook_secret"):
            value: SecretStr = getattr(self, name)
            if value.get_secret_value() in EXAMPLE_SECRETS:
                raise ValueError(
                    f"TUANBOX_{name.upper()} still holds the shipped example value; "
                    f"set a real secret (TUANBOX_ENV={self.env})"
                )
        if self.env == "production":
            self._refuse_short_secrets()
        if self.env == "production" and self.pickup_signing_key is None:
            raise ValueError("TUANBOX_PICKUP_SIGNING_KEY is required in production")
        return self

    @model_validator(mode="after")
    def _check_payment_providers(self) -> Settings:
        if not self.payment_providers and self.env != "production":
            self.payment_providers = ["sim"]
        if not self.payment_providers:
            raise ValueError("TUANBOX_PAYMENT_PROVIDERS is required in production (e.g. wechat)")
        unknown = [p for p in self.payment_providers if p not in PAYMENT_PROVIDERS]
        if unknown or len(set(self.payment_providers)) != len(self.payment_providers):
            raise ValueError(
                f"TUANBOX_PAYMENT_PROVIDERS must name distinct providers of {PAYMENT_PROVIDERS}"
            )
        if self.env == "production" and "sim" in self.payment_providers:
            raise ValueError(
                "TUANBOX_PAYMENT_PROVIDERS names `sim`: the simulated gateway takes no money "
                "and exists only in development and test"
            )
        if "wechat" in self.payment_providers:
            self._check_wechatpay()
        return self

    def _check_wechatpay(self) -> None:
        missing = [
            f"TUANBOX_{name.upper()}"
            for name in ("wechatpay_mchid", "wechatpay_appid", "wechatpay_merchant_serial_no")
            if not getattr(self, name)
        ]
        if self.wechatpay_apiv3_key is None:
            missing.append("TUANBOX_WECHATPAY_APIV3_KEY")
        if self.wechatpay_private_key is None and not self.wechatpay_private_key_file:
            missing.append("TUANBOX_WECHATPAY_PRIVATE_KEY (or _FILE)")
        if missing:
            raise ValueError(f"payment provider wechat needs {', '.join(missing)}")
        assert self.wechatpay_apiv3_key is not None
        if len(self.wechatpay_apiv3_key.get_secret_value().encode()) != 32:
            raise ValueError("TUANBOX_WECHATPAY_APIV3_KEY must be 32 bytes (AES-256-GCM)")
        if (self.wechatpay_platform_public_key is None) != (
            self.wechatpay_platform_public_key_id is None
        ):
            raise ValueError("TUANBOX_WECHATPAY_PLATFORM_PUBLIC_KEY and _PUBLIC_KEY_ID go together")
        if self.env == "production":
            urls = {
                "TUANBOX_WECHATPAY_GATEWAY_URL": self.wechatpay_gateway_url,
                "TUANBOX_WECHATPAY_NOTIFY_URL": self.wechatpay_notify_url_resolved,
                "TUANBOX_WECHATPAY_H5_URL": self.wechatpay_h5_url,
            }
            for name, url in urls.items():
                if not url.startswith("https://"):
                    raise ValueError(f"{name} must be https in production (it is {url!r})")

    @model_validator(mode="after")
    def _check_risk_rules(self) -> Settings:
        """Read the rules file and check every override now: a typo fails at start-up."""
        from tuanbox.risk.config import merged_overrides

        try:
            self.risk_rules = merged_overrides(
                self.risk_rules_file, self.risk_rules, self.risk_review_score, self.risk_block_score
            )
        except ValueError as exc:
            raise ValueError(f"TUANBOX_RISK_RULES / _RULES_FILE: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _check_sms(self) -> Settings:
        if self.sms_backend is None:
            self.sms_backend = "gateway" if self.env == "production" else "inbox"
        if self.env == "production" and self.sms_backend != "gateway":
            raise ValueError(
                "TUANBOX_SMS_BACKEND=inbox keeps codes on this machine; production texts "
                "through the gateway (TUANBOX_SMS_BACKEND=gateway)"
            )
        if self.sms_backend == "gateway":
            missing = [
                f"TUANBOX_{name.upper()}"
                for name in (
                    "sms_gateway_url",
                    "sms_access_key_id",
                    "sms_access_key_secret",
                    "sms_sign_name",
                )
                if not getattr(self, name)
            ]
            missing += [
                f"TUANBOX_SMS_TEMPLATES[{name!r}]"
                for name in SMS_REQUIRED_TEMPLATES
                if not self.sms_templates.get(name)
            ]
            if missing:
                raise ValueError(f"the SMS gateway needs {', '.join(missing)}")
            assert self.sms_gateway_url is not None
            if self.env == "production" and not self.sms_gateway_url.startswith("https://"):
                raise ValueError("TUANBOX_SMS_GATEWAY_URL must be https in production")
        return self

    def _refuse_short_secrets(self) -> None:
        """Keys that sign tokens and webhooks or encrypt PII must not be guessable."""
        secrets = {
            "TUANBOX_SECRET_KEY": self.secret_key,
            "TUANBOX_PII_KEY": self.pii_key,
            "TUANBOX_PAYMENT_WEBHOOK_SECRET": self.payment_webhook_secret,
            **{f"TUANBOX_PII_KEYS[{kid!r}]": key for kid, key in self.pii_keys.items()},
        }
        if self.mqtt_password is not None:
            # The bridge's broker account reads every locker's events and commands every
            # locker's doors.
            secrets["TUANBOX_MQTT_PASSWORD"] = self.mqtt_password
        for variable, value in secrets.items():
            size = len(value.get_secret_value().encode())
            if size < MIN_SECRET_BYTES:
                raise ValueError(
                    f"{variable} is {size} bytes; production needs at least "
                    f"{MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 32`)"
                )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment and .env; entry points call this, libraries never do."""
    return Settings()
