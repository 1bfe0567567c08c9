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

from ledger.daraja.client import SANDBOX_INITIATOR_PASSWORD, forbidden_word
from ledger.daraja.credentials import certificate_environment
from voice_server.local_secrets import local_secret

# Safaricom's public sandbox values: the defaults for trying the product, refused in production.
SANDBOX_STK_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SANDBOX_PAYOUT_SHORTCODE = "600000"
SANDBOX_INITIATOR = "testapi"


# Minimum lengths of configured secrets (Supabase's JWT secrets are at least 32 characters).
MIN_SECRET_LENGTH = 32
MIN_WEBHOOK_SECRET_LENGTH = 16
MIN_CALLBACK_SECRET_LENGTH = 24


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
        default=None,
        description="Base URL Daraja calls back on (https:// in production, required there); "
        "default http://HOST:PORT",
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
    elevenlabs_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ELEVENLABS_BASE_URL", "ONGEA_ELEVENLABS_BASE_URL"),
        description="Override of the ElevenLabs API base URL (default: ElevenLabs' production API)",
    )
    ws_ping_interval_seconds: float = Field(
        default=20.0,
        gt=0,
        description="The conversation WebSocket pings this often and closes a connection whose last ping "
        "went unanswered",
    )
    sweep_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the sweeper expires sessions and proposals"
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
        default=SANDBOX_STK_SHORTCODE,
        validation_alias=AliasChoices("DARAJA_SHORTCODE", "ONGEA_DARAJA_SHORTCODE"),
        description="Lipa Na M-Pesa shortcode of STK top-ups: the paybill, or a till's store number",
    )
    daraja_stk_till: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_STK_TILL", "ONGEA_DARAJA_STK_TILL"),
        description="Till that STK top-ups pay (CustomerBuyGoodsOnline, PartyB = till); unset = the paybill",
    )
    daraja_passkey: SecretStr = Field(
        default=SecretStr(SANDBOX_PASSKEY),
        validation_alias=AliasChoices("DARAJA_PASSKEY", "ONGEA_DARAJA_PASSKEY"),
        description="Lipa Na M-Pesa passkey (default: Safaricom's public sandbox passkey)",
    )
    daraja_b2c_shortcode: str = Field(
        default=SANDBOX_PAYOUT_SHORTCODE,
        validation_alias=AliasChoices("DARAJA_B2C_SHORTCODE", "ONGEA_DARAJA_B2C_SHORTCODE"),
        description="Shortcode that pays B2C and B2Pochi, from its Utility account",
    )
    daraja_b2b_shortcode: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DARAJA_B2B_SHORTCODE", "ONGEA_DARAJA_B2B_SHORTCODE"),
        description="Shortcode that pays tills, paybills and banks (B2B), from its Working account; "
        "unset = the B2C shortcode (not in production)",
    )
    daraja_initiator_name: str = Field(
        default=SANDBOX_INITIATOR,
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
    daraja_c2b_shortcode: str = Field(
        default="600000",
        pattern=r"^[0-9]{5,7}$",
        validation_alias=AliasChoices("DARAJA_C2B_SHORTCODE", "ONGEA_DARAJA_C2B_SHORTCODE"),
        description="Paybill people pay into from their bank app (bank_to_mpesa, C2B)",
    )
    daraja_c2b_response_type: Literal["Completed", "Cancelled"] = Field(
        default="Completed",
        validation_alias=AliasChoices("DARAJA_C2B_RESPONSE_TYPE", "ONGEA_DARAJA_C2B_RESPONSE_TYPE"),
        description="What M-Pesa does with a C2B payment when our validation does not answer in time",
    )
    daraja_c2b_register_version: Literal["v1", "v2"] = Field(
        default="v1",
        validation_alias=AliasChoices("DARAJA_C2B_REGISTER_VERSION", "ONGEA_DARAJA_C2B_REGISTER_VERSION"),
        description="Version of the C2B registerurl API of the product (v1 or v2)",
    )
    mpesa_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Pause between rounds of the M-Pesa background worker"
    )
    mpesa_lease_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="A claimed payout or push not finished by then is due again"
    )
    payout_rate_per_second: float = Field(
        default=50.0,
        gt=0,
        le=1000,
        description="Payout requests a process sends Daraja a second, evenly spaced",
    )
    topup_rate_limit: int = Field(default=5, ge=1, description="Top-up requests a user may make per window")
    topup_rate_window_seconds: int = Field(
        default=600, ge=1, description="Window of ONGEA_TOPUP_RATE_LIMIT (a further request answers 429)"
    )
    http_read_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="A request's headers and body must arrive within this"
    )

    def config_refusal(self) -> str | None:
        """Why `serve` must not start with these secrets or C2B settings (one clear line), or None: a short
        secret can be guessed, so configured ones have minimum lengths (generated ones are 64 characters)."""
        minimums = (
            ("ONGEA_JWT_SECRET", self.jwt_secret, MIN_SECRET_LENGTH),
            ("ONGEA_SESSION_SECRET", self.session_secret, MIN_SECRET_LENGTH),
            ("ELEVENLABS_WEBHOOK_SECRET", self.elevenlabs_webhook_secret, MIN_WEBHOOK_SECRET_LENGTH),
            ("ONGEA_MPESA_CALLBACK_SECRET", self.mpesa_callback_secret, MIN_CALLBACK_SECRET_LENGTH),
        )
        for name, value, minimum in minimums:
            if value is not None and len(value.get_secret_value().strip()) < minimum:
                return f"{name} is too short: at least {minimum} characters are needed"
        if self.daraja_environment == "production" and self.daraja_c2b_shortcode == "600000":
            return "DARAJA_C2B_SHORTCODE is the sandbox's 600000: set the paybill people pay into"
        if self.payout_rate_per_second * self.mpesa_lease_seconds < 2:
            # A claimed payout waits for its slot; one whose slot lies past half its lease would hold the
            # worker's whole round (top-ups, callbacks) waiting for it.
            return (
                "ONGEA_PAYOUT_RATE_PER_SECOND is too slow for ONGEA_MPESA_LEASE_SECONDS: a payout must get "
                "its turn within half its lease (rate x lease >= 2)"
            )
        return None

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
        """The secret path segment of callback URLs; a generated one never holds a word Safaricom refuses
        (drawn again), a configured one that does is refused at start-up (`startup_refusal`)."""
        if self.mpesa_callback_secret is not None:
            return self.mpesa_callback_secret.get_secret_value()
        return local_secret(
            self.data_dir, "mpesa_callback_secret", accept=lambda value: forbidden_word(value) is None
        )

    def startup_refusal(self) -> str | None:
        """Why the server must not start with these Daraja settings (one clear line), or None."""
        return self.config_refusal() or daraja_refusal(self)

    @property
    def daraja_configured(self) -> bool:
        """Real Daraja only with both credentials; otherwise the local simulator stands in."""
        return self.daraja_consumer_key is not None and self.daraja_consumer_secret is not None


def daraja_refusal(s: Settings) -> str | None:
    """The first reason to refuse to start, in the order a person sets production up (README)."""
    production = s.daraja_environment == "production"
    if production and not s.daraja_configured:
        return (
            "DARAJA_ENVIRONMENT=production needs DARAJA_CONSUMER_KEY and DARAJA_CONSUMER_SECRET "
            "(without them the local simulator would stand in for M-Pesa)"
        )
    if production and not (s.public_url or "").lower().startswith("https://"):
        return (
            "DARAJA_ENVIRONMENT=production needs ONGEA_PUBLIC_URL to be the https:// URL Daraja calls back on"
        )
    if s.daraja_configured:
        word = forbidden_word(s.public_url or "")
        if word is not None:
            return f"ONGEA_PUBLIC_URL contains {word!r}, which Safaricom refuses in callback URLs"
        if s.mpesa_callback_secret is not None:
            word = forbidden_word(s.mpesa_callback_secret.get_secret_value())
            if word is not None:
                return (
                    f"ONGEA_MPESA_CALLBACK_SECRET contains {word!r}, which Safaricom refuses in callback URLs"
                )
    if production:
        if s.daraja_shortcode == SANDBOX_STK_SHORTCODE:
            return (
                f"DARAJA_SHORTCODE is the sandbox's {SANDBOX_STK_SHORTCODE}: set your paybill or store number"
            )
        if s.daraja_passkey.get_secret_value() == SANDBOX_PASSKEY:
            return "DARAJA_PASSKEY is the sandbox's passkey: set the one Safaricom sent for your shortcode"
        if s.daraja_b2c_shortcode == SANDBOX_PAYOUT_SHORTCODE:
            return f"DARAJA_B2C_SHORTCODE is the sandbox's {SANDBOX_PAYOUT_SHORTCODE}: set your B2C shortcode"
        if s.daraja_b2b_shortcode is None or s.daraja_b2b_shortcode == SANDBOX_PAYOUT_SHORTCODE:
            return "DARAJA_B2B_SHORTCODE must be set in production (its Working account pays B2B)"
        if s.daraja_initiator_name == SANDBOX_INITIATOR:
            return f"DARAJA_INITIATOR_NAME is the sandbox's {SANDBOX_INITIATOR!r}: set your API initiator"
        password = s.daraja_initiator_password
        if password is None or password.get_secret_value() == SANDBOX_INITIATOR_PASSWORD:
            return "DARAJA_INITIATOR_PASSWORD must be set to your initiator's password (not the sandbox's)"
        if s.daraja_certificate_path is None:
            return "DARAJA_CERTIFICATE_PATH must name Safaricom's production certificate"
    if s.daraja_configured and s.daraja_certificate_path is not None:
        try:
            environment = certificate_environment(s.daraja_certificate_path.read_bytes())
        except (OSError, ValueError) as exc:
            return f"DARAJA_CERTIFICATE_PATH cannot be read as a certificate: {exc}"
        other = "sandbox" if production else "production"
        if environment == other:
            return (
                f"DARAJA_CERTIFICATE_PATH is Safaricom's {other} certificate but DARAJA_ENVIRONMENT is "
                f"{s.daraja_environment}"
            )
    return None


def _secret_or_local(value: SecretStr | None, data_dir: Path, name: str) -> str:
    return value.get_secret_value() if value is not None else local_secret(data_dir, name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
