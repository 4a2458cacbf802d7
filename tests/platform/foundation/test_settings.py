"""Settings refuse shipped example secrets outside development and read env prefixes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tuanbox.settings import Settings


def test_development_accepts_example_secrets() -> None:
    s = Settings(_env_file=None, env="development")  # type: ignore[call-arg]
    assert s.secret_key.get_secret_value() == "dev-secret-key-change-me"


@pytest.mark.parametrize("env", ["test", "production"])
def test_example_secrets_refused_outside_development(env: str) -> None:
    with pytest.raises(ValidationError, match="TUANBOX_SECRET_KEY still holds the shipped example"):
        Settings(_env_file=None, env=env)  # type: ignore[call-arg]


def test_production_requires_a_pickup_signing_key() -> None:
    with pytest.raises(ValidationError, match="PICKUP_SIGNING_KEY"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            env="production",
            secret_key="s" * 40,
            pii_key="p" * 40,
            payment_webhook_secret="w" * 40,
        )


def test_env_prefix_and_dotenv(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    dotenv = tmp_path / ".env"
    dotenv.write_text("TUANBOX_API_PORT=9123\nTUANBOX_REDIS_URL=redis://example:6379/2\n")
    monkeypatch.setenv("TUANBOX_API_PORT", "9124")  # the environment wins over .env
    s = Settings(_env_file=dotenv)  # type: ignore[call-arg]
    assert s.api_port == 9124
    assert s.redis_url == "redis://example:6379/2"


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match="api_port"):
        Settings(_env_file=None, api_port=70000)  # type: ignore[call-arg]


LONG = {
    "secret_key": "s" * 32,
    "pii_key": "p" * 32,
    "payment_webhook_secret": "w" * 32,
}


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"secret_key": "s" * 31}, "TUANBOX_SECRET_KEY is 31 bytes"),
        ({"pii_key": "short"}, "TUANBOX_PII_KEY is 5 bytes"),
        ({"payment_webhook_secret": "test-webhook-secret"}, "TUANBOX_PAYMENT_WEBHOOK_SECRET is 19"),
        ({"pii_keys": {"k0": "k" * 40, "k1": "old"}}, "TUANBOX_PII_KEYS\\['k1'\\] is 3 bytes"),
    ],
)
def test_production_refuses_secrets_shorter_than_32_bytes(
    overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(ValidationError, match=variable):
        Settings(_env_file=None, env="production", **{**LONG, **overrides})  # type: ignore[arg-type]


def test_production_counts_bytes_and_accepts_32() -> None:
    # 32 bytes pass the length check; what fails next is the missing pickup key.
    with pytest.raises(ValidationError, match="PICKUP_SIGNING_KEY") as caught:
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            env="production",
            **{**LONG, "pii_key": "密" * 11},  # 33 bytes
        )
    assert "bytes" not in str(caught.value)


def test_short_secrets_are_fine_outside_production() -> None:
    s = Settings(_env_file=None, env="test", **{k: "x" * 8 for k in LONG})  # type: ignore[arg-type]
    assert s.secret_key.get_secret_value() == "x" * 8
