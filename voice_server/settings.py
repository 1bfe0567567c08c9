"""Every setting of the server, read from the environment (and a `.env` file) with pydantic-settings.

One place, so the README's settings table and the code cannot drift apart: each field's env name is its
`validation_alias` (or `ONGEA_` + the field name). The settings fall into groups, one class each (database,
server, tokens, who may spend, limits, ElevenLabs, Daraja, callbacks, the M-Pesa worker, retention,
observability, billing, crash tests); `Settings` is all of them, read flat, so every environment variable
keeps its name and every reader says `settings.port`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.daraja.client import SANDBOX_INITIATOR_PASSWORD, forbidden_word
from ledger.daraja.credentials import certificate_environment
from ledger.faults import FaultPoint
from ledger.rules import GateRules
from voice_server.callback_sources import networks
from voice_server.local_secrets import local_secret

# Safaricom's public sandbox values: the defaults for trying the product, refused in production.
SANDBOX_STK_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SANDBOX_PAYOUT_SHORTCODE = "600000"
SANDBOX_INITIATOR = "testapi"
SANDBOX_PULL_NOMINATED_NUMBER = "0722000000"


# Minimum lengths of configured secrets (Supabase's JWT secrets are at least 32 characters).
MIN_SECRET_LENGTH = 32
MIN_WEBHOOK_SECRET_LENGTH = 16
MIN_CALLBACK_SECRET_LENGTH = 24


class DatabaseSettings(BaseModel):
    """Where the data lives: PostgreSQL (or the embedded one) and the pool of each process."""

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "ONGEA_DATABASE_URL"),
        description="PostgreSQL URL; unset = embedded PostgreSQL (pgserver) under ONGEA_DATA_DIR",
    )
    data_dir: Path = Field(default=Path(".ongea"), description="Embedded database and local secrets")
    db_pool_min: int = Field(default=2, ge=1, description="Smallest connection pool size")
    db_pool_max: int = Field(default=20, ge=1, description="Largest connection pool size")

    @model_validator(mode="after")
    def _pool_sizes_fit(self) -> Self:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError(
                f"ONGEA_DB_POOL_MIN ({self.db_pool_min}) exceeds ONGEA_DB_POOL_MAX ({self.db_pool_max})"
            )
        return self


class ServerSettings(BaseModel):
    """The HTTP server and its conversation WebSockets."""

    host: str = Field(default="127.0.0.1", description="Listen address")
    port: int = Field(default=8080, ge=0, le=65535, description="Listen port")
    public_url: str | None = Field(
        default=None,
        description="Base URL Daraja calls back on (https:// in production, required there); "
        "default http://HOST:PORT",
    )
    http_read_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="A request's headers and body must arrive within this"
    )
    ws_ping_interval_seconds: float = Field(
        default=20.0,
        gt=0,
        description="The conversation WebSocket pings this often and closes a connection whose last ping "
        "went unanswered",
    )
    ws_max_sockets_per_user: int = Field(
        default=5,
        ge=1,
        description="Conversation WebSockets one user may hold open on a process (one per session: a newer "
        "connection to a session replaces the older)",
    )
    ws_session_check_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a process checks its open WebSockets' sessions (ended, expired, or taken "
        "over by a newer connection on any process) and closes those that are over",
    )


class TokenSettings(BaseModel):
    """Who is who: the keys and lives of user tokens and voice-session tokens."""

    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ONGEA_JWT_SECRET", "SUPABASE_JWT_SECRET"),
        description="HS256 secret of user tokens (Supabase JWT secret); unset = generated in ONGEA_DATA_DIR",
    )
    user_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="Life of a printed token")
    session_secret: SecretStr | None = Field(
        default=None, description="HS256 key of session tokens; unset = generated in ONGEA_DATA_DIR"
    )
    session_ttl_seconds: int = Field(default=900, ge=60, description="Life of a voice session")


class GateSettings(BaseModel):
    """Who may spend: written into the ledger's `ledger_rules` row at start-up; the SQL decides with them."""

    proposal_ttl_seconds: int = Field(default=120, ge=1, description="A proposal expires unanswered after")
    pin_threshold: Decimal = Field(
        default=Decimal("1000"), ge=0, description="Payments above this amount (KES) need the PIN"
    )
    no_pin_count: int = Field(
        default=5, ge=0, description="Payments without a PIN since the last PIN before the next one needs it"
    )
    no_pin_amount: Decimal = Field(
        default=Decimal("3000"), ge=0, description="Total (KES) of payments without a PIN since the last PIN"
    )
    pin_max_attempts: int = Field(default=5, ge=1, description="Wrong PINs in a row that lock payments")
    pin_lockout_seconds: int = Field(default=900, ge=1, description="How long a PIN lockout lasts")

    def gate_rules(self) -> GateRules:
        """The numbers of who may spend, as the ledger's `ledger_rules` row holds them."""
        return GateRules(
            pin_threshold=self.pin_threshold,
            no_pin_count=self.no_pin_count,
            no_pin_amount=self.no_pin_amount,
            pin_max_attempts=self.pin_max_attempts,
            pin_lockout_seconds=self.pin_lockout_seconds,
        )


class LimitSettings(BaseModel):
    """How much one user (or one process) may ask for at once: turns, sessions, top-ups, PIN changes."""

    turns_per_user: int = Field(
        default=2, ge=1, description="Turns (WebSocket and tools) of one user run at once on a process"
    )
    turns_waiting_per_user: int = Field(
        default=16,
        ge=1,
        description="Turns of one user queued or running on a process; more are refused (busy) at once",
    )
    sessions_per_user: int = Field(
        default=50, ge=1, description="Active voice sessions a user may hold (a further mint answers 429)"
    )
    demo_users_per_process: int = Field(
        default=200, ge=0, description="Demo users (embedded defaults only) one server process makes at most"
    )
    topup_rate_limit: int = Field(default=5, ge=1, description="Top-up requests a user may make per window")
    topup_rate_window_seconds: int = Field(
        default=600, ge=1, description="Window of ONGEA_TOPUP_RATE_LIMIT (a further request answers 429)"
    )
    pin_change_rate_limit: int = Field(
        default=10, ge=1, description="PUT /v1/me/pin requests a user may make per window (then 429)"
    )
    pin_change_rate_window_seconds: int = Field(
        default=600, ge=1, description="Window of ONGEA_PIN_CHANGE_RATE_LIMIT"
    )
    first_pin_sign_in_seconds: int = Field(
        default=600,
        ge=60,
        description="PUT /v1/me/pin sets a first PIN only this soon after the person signed in (Supabase's "
        "`amr` time, else the token's `iat`): a token taken from somewhere cannot choose the PIN that "
        "unlocks large payments",
    )


class ElevenLabsSettings(BaseModel):
    """The ElevenLabs voice agent the app talks through."""

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
        description="Secret of ElevenLabs' post-call webhook signatures, made by ElevenLabs when the webhook "
        "is created (agent-config --apply prints it); unset in development = a local one in ONGEA_DATA_DIR",
    )
    elevenlabs_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ELEVENLABS_BASE_URL", "ONGEA_ELEVENLABS_BASE_URL"),
        description="Override of the ElevenLabs API base URL (default: ElevenLabs' production API)",
    )


class DarajaSettings(BaseModel):
    """M-Pesa (Safaricom's Daraja API): the environment, the credentials and the shortcodes of each API,
    and the local simulator that stands in without credentials."""

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
        default="v2",
        validation_alias=AliasChoices("DARAJA_C2B_REGISTER_VERSION", "ONGEA_DARAJA_C2B_REGISTER_VERSION"),
        description="Version of the C2B registerurl API of the product (v1 or v2)",
    )
    daraja_pull_nominated_number: str = Field(
        default=SANDBOX_PULL_NOMINATED_NUMBER,
        pattern=r"^(0|254)7[0-9]{8}$|^(0|254)1[0-9]{8}$",
        validation_alias=AliasChoices("DARAJA_PULL_NOMINATED_NUMBER", "ONGEA_DARAJA_PULL_NOMINATED_NUMBER"),
        description="Safaricom number nominated when registering Pull Transactions (the portal's sample in "
        "sandbox; your organisation's in production)",
    )
    mpesa_sim_port: int = Field(
        default=0, ge=0, le=65535, description="Port of the embedded simulator (0 = any)"
    )

    @property
    def daraja_configured(self) -> bool:
        """Real Daraja only with both credentials; otherwise the local simulator stands in."""
        return self.daraja_consumer_key is not None and self.daraja_consumer_secret is not None


class CallbackSettings(BaseModel):
    """Daraja's callbacks: the secret in their path and where they may come from."""

    mpesa_callback_secret: SecretStr | None = Field(
        default=None,
        description="Secret path segment of Daraja callbacks; unset = generated in ONGEA_DATA_DIR",
    )
    mpesa_previous_callback_secret: SecretStr | None = Field(
        default=None,
        description="The callback secret before ONGEA_MPESA_CALLBACK_SECRET, still accepted while Daraja "
        "has URLs registered under it (production registers C2B URLs once)",
    )
    mpesa_callback_allowlist: str = Field(
        default="",
        description="Addresses Daraja callbacks are accepted from (IPs or CIDRs, comma-separated; "
        "`safaricom` = Safaricom's published callback addresses); empty = any (sandbox)",
    )
    mpesa_trusted_proxies: str = Field(
        default="",
        description="Reverse proxies (IPs or CIDRs) whose X-Forwarded-For names a callback's source",
    )


class MpesaWorkerSettings(BaseModel):
    """The M-Pesa background worker: its pace, its leases, and when a payout is asked about."""

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
    payout_reconcile_after_seconds: int = Field(
        default=60, ge=1, description="A payout still processing this long is checked by a status query"
    )


class RetentionSettings(BaseModel):
    """The sweeper: how often it expires sessions and proposals, and how long turns are kept."""

    sweep_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the sweeper expires sessions and proposals"
    )
    session_turn_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Turns of voice sessions (voice_session_turns) are kept this long, then the sweeper "
        "removes them",
    )


class ObservabilitySettings(BaseModel):
    """What a process tells its operators: its log and its metrics."""

    log_level: str = Field(default="INFO", description="Python logging level")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token GET /metrics requires; unset = /metrics is refused (403)",
    )

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
            raise ValueError("one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return value


class BillingSettings(BaseModel):
    """Stripe, which bills the plans."""

    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "ONGEA_STRIPE_WEBHOOK_SECRET"),
        description="Signing secret (whsec_...) of Stripe's webhook; unset = Stripe events refused",
    )


class CrashTestSettings(BaseModel):
    """Crash injection, for the crash tests alone: `ONGEA_FAULT=<point>` makes the process SIGKILL itself at
    that point of the money path (`ledger.faults.fault_point`), so a test proves a crash there neither loses
    nor doubles a payment.

    Inert unless a test sets it: unset (the default) nothing happens; a value that names no point is a bad
    setting (it would never fire); with DARAJA_ENVIRONMENT=production, `serve` and `mpesa-worker` refuse to
    start, `ongea-pesa check --production` reports it, and `fault_point` ignores it. Here it is only read
    to be checked: `fault_point` reads the process's environment, so the code on the money path needs no
    settings."""

    fault: FaultPoint | None = Field(
        default=None,
        description="Crash tests only: the process SIGKILLs itself at this point of the money path "
        "(`ledger/faults.py` names them); refused with DARAJA_ENVIRONMENT=production",
    )


class Settings(
    DatabaseSettings,
    ServerSettings,
    TokenSettings,
    GateSettings,
    LimitSettings,
    ElevenLabsSettings,
    DarajaSettings,
    CallbackSettings,
    MpesaWorkerSettings,
    RetentionSettings,
    ObservabilitySettings,
    BillingSettings,
    CrashTestSettings,
    BaseSettings,
):
    """Every setting, by group (the classes above); each is read from its own environment variable, flat:
    the groups order the code, the names stay those of the README's table."""

    model_config = SettingsConfigDict(env_prefix="ONGEA_", env_file=".env", extra="ignore")

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

    def callback_secrets(self) -> tuple[str, ...]:
        """The secrets a callback path may carry: the current one, and the previous while URLs move."""
        previous = self.mpesa_previous_callback_secret
        return (self.callback_secret(),) + ((previous.get_secret_value(),) if previous is not None else ())

    def startup_refusal(self) -> str | None:
        """The first reason the server must not start (one clear line), or None."""
        problems = startup_problems(self)
        return problems[0] if problems else None


def daraja_problems(s: Settings) -> list[str]:
    """Every reason the Daraja settings cannot run, in the order a person sets production up (README)."""
    found: list[str] = []
    production = s.daraja_environment == "production"
    if production and s.fault is not None:
        found.append("ONGEA_FAULT is for the crash tests: a production server never kills itself on purpose")
    if production and not s.daraja_configured:
        found.append(
            "DARAJA_ENVIRONMENT=production needs DARAJA_CONSUMER_KEY and DARAJA_CONSUMER_SECRET "
            "(without them the local simulator would stand in for M-Pesa)"
        )
    if production and not (s.public_url or "").lower().startswith("https://"):
        found.append(
            "DARAJA_ENVIRONMENT=production needs ONGEA_PUBLIC_URL to be the https:// URL Daraja calls back on"
        )
    if s.daraja_configured or production:
        word = forbidden_word(s.public_url or "")
        if word is not None:
            found.append(f"ONGEA_PUBLIC_URL contains {word!r}, which Safaricom refuses in callback URLs")
        if s.mpesa_callback_secret is not None:
            word = forbidden_word(s.mpesa_callback_secret.get_secret_value())
            if word is not None:
                found.append(
                    f"ONGEA_MPESA_CALLBACK_SECRET contains {word!r}, which Safaricom refuses in callback URLs"
                )
    if production:
        if s.daraja_shortcode == SANDBOX_STK_SHORTCODE:
            found.append(
                f"DARAJA_SHORTCODE is the sandbox's {SANDBOX_STK_SHORTCODE}: set your paybill or store number"
            )
        if s.daraja_passkey.get_secret_value() == SANDBOX_PASSKEY:
            found.append(
                "DARAJA_PASSKEY is the sandbox's passkey: set the one Safaricom sent for your shortcode"
            )
        if s.daraja_b2c_shortcode == SANDBOX_PAYOUT_SHORTCODE:
            found.append(
                f"DARAJA_B2C_SHORTCODE is the sandbox's {SANDBOX_PAYOUT_SHORTCODE}: set your B2C shortcode"
            )
        if s.daraja_b2b_shortcode is None or s.daraja_b2b_shortcode == SANDBOX_PAYOUT_SHORTCODE:
            found.append("DARAJA_B2B_SHORTCODE must be set in production (its Working account pays B2B)")
        if s.daraja_c2b_shortcode == SANDBOX_PAYOUT_SHORTCODE:
            found.append("DARAJA_C2B_SHORTCODE is the sandbox's 600000: set the paybill people pay into")
        if s.daraja_initiator_name == SANDBOX_INITIATOR:
            found.append(
                f"DARAJA_INITIATOR_NAME is the sandbox's {SANDBOX_INITIATOR!r}: set your API initiator"
            )
        password = s.daraja_initiator_password
        if password is None or password.get_secret_value() == SANDBOX_INITIATOR_PASSWORD:
            found.append(
                "DARAJA_INITIATOR_PASSWORD must be set to your initiator's password (not the sandbox's)"
            )
        if s.daraja_certificate_path is None:
            found.append("DARAJA_CERTIFICATE_PATH must name Safaricom's production certificate")
        # Pull Transactions is registered on start: with the portal's sample it would name someone else's
        # phone as the organisation's (README, Going to production, step 7).
        nominated = s.daraja_pull_nominated_number.removeprefix("254").lstrip("0")
        if nominated == SANDBOX_PULL_NOMINATED_NUMBER.lstrip("0"):
            found.append(
                f"DARAJA_PULL_NOMINATED_NUMBER is the portal's sample {SANDBOX_PULL_NOMINATED_NUMBER}: "
                "set your organisation's Safaricom number"
            )
    if (s.daraja_configured or production) and s.daraja_certificate_path is not None:
        try:
            environment = certificate_environment(s.daraja_certificate_path.read_bytes())
        except (OSError, ValueError) as exc:
            found.append(f"DARAJA_CERTIFICATE_PATH cannot be read as a certificate: {exc}")
        else:
            other = "sandbox" if production else "production"
            if environment == other:
                found.append(
                    f"DARAJA_CERTIFICATE_PATH is Safaricom's {other} certificate but DARAJA_ENVIRONMENT is "
                    f"{s.daraja_environment}"
                )
    return found


def startup_problems(s: Settings) -> list[str]:
    """Every missing or unsafe setting at once, one line each, in the order of the README's Deploy steps
    (database, secrets, Daraja, ElevenLabs), so a person fixes them in one sitting, not one restart each.
    In production (DARAJA_ENVIRONMENT=production) the development fallbacks are refused too: an embedded
    database, and user or session secrets generated on one machine (Supabase's tokens would be refused, and
    servers would not accept each other's session tokens)."""
    production = s.daraja_environment == "production"
    found: list[str] = []
    # 1. Database.
    if production and not s.database_url:
        found.append(
            "DATABASE_URL must be set in production: the embedded PostgreSQL is for development "
            "(its data lives in one machine's ONGEA_DATA_DIR)"
        )
    # 3. Secrets.
    secrets = (
        ("ONGEA_JWT_SECRET", s.jwt_secret, MIN_SECRET_LENGTH, "your Supabase project's JWT secret"),
        ("ONGEA_SESSION_SECRET", s.session_secret, MIN_SECRET_LENGTH, "a random secret all servers share"),
        ("ONGEA_MPESA_CALLBACK_SECRET", s.mpesa_callback_secret, MIN_CALLBACK_SECRET_LENGTH, ""),
    )
    for name, value, minimum, what in secrets:
        if value is None:
            if production and what:
                found.append(f"{name} must be set in production: {what} ({minimum}+ characters)")
        elif len(value.get_secret_value().strip()) < minimum:
            found.append(f"{name} is too short: at least {minimum} characters are needed")
    if (
        s.jwt_secret is not None
        and s.session_secret is not None
        and s.jwt_secret.get_secret_value() == s.session_secret.get_secret_value()
    ):
        found.append("ONGEA_SESSION_SECRET must differ from ONGEA_JWT_SECRET (one key, one kind of token)")
    # 5. Daraja.
    found.extend(daraja_problems(s))
    for name, spec in (
        ("ONGEA_MPESA_CALLBACK_ALLOWLIST", s.mpesa_callback_allowlist),
        ("ONGEA_MPESA_TRUSTED_PROXIES", s.mpesa_trusted_proxies),
    ):
        try:
            networks(spec)
        except ValueError as exc:
            found.append(f"{name}: {exc}")
    if s.payout_rate_per_second * s.mpesa_lease_seconds < 2:
        found.append(
            "ONGEA_PAYOUT_RATE_PER_SECOND is too slow for ONGEA_MPESA_LEASE_SECONDS: a payout must get "
            "its turn within half its lease (rate x lease >= 2)"
        )
    # 6. ElevenLabs.
    webhook = s.elevenlabs_webhook_secret
    if webhook is not None and len(webhook.get_secret_value().strip()) < MIN_WEBHOOK_SECRET_LENGTH:
        found.append(
            "ELEVENLABS_WEBHOOK_SECRET is too short: "
            f"at least {MIN_WEBHOOK_SECRET_LENGTH} characters are needed"
        )
    if production and s.elevenlabs_api_key is not None:
        if webhook is None:
            found.append(
                "ELEVENLABS_WEBHOOK_SECRET must be set in production: the secret ElevenLabs showed when its "
                "post-call webhook was created (ongea-pesa agent-config --apply, or Settings > Webhooks)"
            )
        if not s.elevenlabs_agent_id:
            found.append(
                "ELEVENLABS_AGENT_ID must be set: the agent id ongea-pesa agent-config --apply printed"
            )
    return found


def _secret_or_local(value: SecretStr | None, data_dir: Path, name: str) -> str:
    return value.get_secret_value() if value is not None else local_secret(data_dir, name)
