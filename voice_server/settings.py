"""Every setting of the server, read from the environment (and a `.env` file) with pydantic-settings.

One place, so the README's settings table and the code cannot drift apart: each field's env name is its
`validation_alias` (or `ONGEA_` + the field name).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_server.local_secrets import local_secret


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONGEA_", env_file=".env", extra="ignore")

    # Database
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "ONGEA_DATABASE_URL"),
        description="PostgreSQL URL; unset = embedded PostgreSQL (pgserver) under ONGEA_DATA_DIR",
    )
    data_dir: Path = Field(default=Path(".ongea"), description="Embedded database and local secrets")
    db_pool_min: int = Field(default=2, ge=1, description="Smallest connection pool size")
    db_pool_max: int = Field(default=20, ge=1, description="Largest connection pool size")

    # HTTP server
    host: str = Field(default="127.0.0.1", description="Listen address")
    port: int = Field(default=8080, ge=0, le=65535, description="Listen port")
    public_url: str | None = Field(
        default=None, description="Base URL Daraja calls back on; default http://HOST:PORT"
    )
    log_level: str = Field(default="INFO", description="Python logging level")

    # Tokens
    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ONGEA_JWT_SECRET", "SUPABASE_JWT_SECRET"),
        description="HS256 secret of user tokens (Supabase JWT secret); unset = generated in ONGEA_DATA_DIR",
    )
    user_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="Life of a printed token")

    # Ledger rules
    proposal_ttl_seconds: int = Field(default=120, ge=1, description="A proposal expires unanswered after")

    pin_threshold: Decimal = Field(
        default=Decimal("1000"), ge=0, description="Payments above this amount (KES) need the PIN"
    )
    pin_max_attempts: int = Field(default=5, ge=1, description="Wrong PINs in a row that lock PIN payments")
    pin_lockout_seconds: int = Field(default=3600, ge=1, description="How long a PIN lockout lasts")

    # Voice sessions
    session_ttl_seconds: int = Field(default=900, ge=60, description="Life of a voice session")
    session_secret: SecretStr | None = Field(
        default=None, description="HS256 key of session tokens; unset = generated in ONGEA_DATA_DIR"
    )
    elevenlabs_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ELEVENLABS_API_KEY", "ONGEA_ELEVENLABS_API_KEY"),
        description="ElevenLabs API key; with an agent id, sessions also carry an ElevenLabs signed URL",
    )
    elevenlabs_agent_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ELEVENLABS_AGENT_ID", "ONGEA_ELEVENLABS_AGENT_ID"),
        description="The ElevenLabs agent the app talks to",
    )
    elevenlabs_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ELEVENLABS_WEBHOOK_SECRET", "ONGEA_ELEVENLABS_WEBHOOK_SECRET"),
        description="Secret of ElevenLabs' post-call webhook signatures; unset = generated in ONGEA_DATA_DIR",
    )

    # M-Pesa (Daraja)
    daraja_environment: Literal["sandbox", "production"] = Field(
        default="sandbox",
        validation_alias=AliasChoices("DARAJA_ENVIRONMENT", "ONGEA_DARAJA_ENVIRONMENT"),
        description="sandbox or production: picks Safaricom's base URL",
    )
    daraja_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_BASE_URL", "ONGEA_DARAJA_BASE_URL"),
        description="Override of the Daraja base URL (default from DARAJA_ENVIRONMENT, or the simulator)",
    )
    daraja_consumer_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_CONSUMER_KEY", "ONGEA_DARAJA_CONSUMER_KEY"),
        description="Daraja app consumer key; with the secret, switches from the simulator to Daraja",
    )
    daraja_consumer_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_CONSUMER_SECRET", "ONGEA_DARAJA_CONSUMER_SECRET"),
        description="Daraja app consumer secret",
    )
    daraja_shortcode: str = Field(
        default="174379",
        validation_alias=AliasChoices("DARAJA_SHORTCODE", "ONGEA_DARAJA_SHORTCODE"),
        description="Lipa Na M-Pesa shortcode for STK push top-ups",
    )
    daraja_passkey: SecretStr = Field(
        default=SecretStr("bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"),
        validation_alias=AliasChoices("DARAJA_PASSKEY", "ONGEA_DARAJA_PASSKEY"),
        description="Lipa Na M-Pesa passkey (default: Safaricom's public sandbox passkey)",
    )
    daraja_b2c_shortcode: str = Field(
        default="600000",
        validation_alias=AliasChoices("DARAJA_B2C_SHORTCODE", "ONGEA_DARAJA_B2C_SHORTCODE"),
        description="Shortcode that pays out (B2C, B2Pochi, B2B)",
    )
    daraja_initiator_name: str = Field(
        default="testapi",
        validation_alias=AliasChoices("DARAJA_INITIATOR_NAME", "ONGEA_DARAJA_INITIATOR_NAME"),
        description="API initiator user name of the payout shortcode",
    )
    daraja_initiator_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_INITIATOR_PASSWORD", "ONGEA_DARAJA_INITIATOR_PASSWORD"),
        description="Initiator password, encrypted into SecurityCredential",
    )
    daraja_certificate_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_CERTIFICATE_PATH", "ONGEA_DARAJA_CERTIFICATE_PATH"),
        description="Safaricom's public certificate (PEM) for SecurityCredential",
    )
    mpesa_callback_secret: SecretStr | None = Field(
        default=None,
        description="Secret path segment of Daraja callbacks; unset = generated in ONGEA_DATA_DIR",
    )
    mpesa_sim_port: int = Field(
        default=0, ge=0, le=65535, description="Port of the embedded simulator (0 = any)"
    )
    payout_reconcile_after_seconds: int = Field(
        default=60, ge=1, description="A payout still processing this long is checked by a status query"
    )

    # Billing
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "ONGEA_STRIPE_WEBHOOK_SECRET"),
        description="Signing secret (whsec_...) of Stripe's webhook; unset = Stripe events refused",
    )

    @model_validator(mode="after")
    def _pool_sizes_fit(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError(
                f"ONGEA_DB_POOL_MIN ({self.db_pool_min}) exceeds ONGEA_DB_POOL_MAX ({self.db_pool_max})"
            )
        return self

    @field_validator("jwt_secret", "session_secret")
    @classmethod
    def _long_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        # HS256 over a short key is forged offline by guessing the key (Supabase's secrets are 32+).
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("a signing secret is at least 32 characters (unset, one is generated)")
        return value

    @field_validator("mpesa_callback_secret")
    @classmethod
    def _long_callback_path(cls, value: SecretStr | None) -> SecretStr | None:
        # The secret is the callbacks' path: a short one is guessed and a forged callback credits a wallet.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the callback secret is at least 16 characters (unset, one is generated)")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
            raise ValueError("one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return value

    def user_jwt_secret(self) -> str:
        return _secret_or_local(self.jwt_secret, self.data_dir, "jwt_secret")

    def session_token_secret(self) -> str:
        return _secret_or_local(self.session_secret, self.data_dir, "session_secret")

    def elevenlabs_webhook_key(self) -> str:
        return _secret_or_local(self.elevenlabs_webhook_secret, self.data_dir, "elevenlabs_webhook_secret")

    def callback_secret(self) -> str:
        return _secret_or_local(self.mpesa_callback_secret, self.data_dir, "mpesa_callback_secret")

    @property
    def daraja_configured(self) -> bool:
        """Real Daraja only with both credentials; otherwise the local simulator stands in."""
        return self.daraja_consumer_key is not None and self.daraja_consumer_secret is not None


def _secret_or_local(value: SecretStr | None, data_dir: Path, name: str) -> str:
    return value.get_secret_value() if value is not None else local_secret(data_dir, name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
