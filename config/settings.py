"""Settings: a TOML file, then PHONESCREEN_<SECTION>_<KEY> environment variables, typed and checked at
start-up. An unknown or ill-typed key stops the program with a message naming key, value and source."""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.sip_checks import SRTP_MODES, TRANSPORTS, public_address_ok, sip_problems

ENV_PREFIX = "PHONESCREEN_"
# Environment variables with this prefix that are not settings keys.
ENV_RESERVED = {"PHONESCREEN_CONFIG"}


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # the address candidates and Twilio reach; defaults to http://host:port
    max_body_bytes: int = 1_048_576
    admin_password: str = ""
    admin_session_hours: int = 12  # how long a dashboard login lasts
    # SIGTERM: active interviews get this long to finish by themselves, then hear a goodbye (partial).
    shutdown_grace_s: float = 30.0
    shutdown_goodbye_s: float = 20.0  # the most the goodbye line and the hang-up may take after the grace
    recording_url_ttl_s: int = 3600  # how long a signed recording URL works
    recording_url_secret: str = ""  # HMAC key of recording URLs; empty = a random one per process
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For names the real client, comma-separated
    trusted_proxies: str = ""


@dataclass(frozen=True)
class StoreSettings:
    path: str = "var/phonescreen.db"  # the SQLite file when `url` is empty; its folder holds the logs
    busy_timeout_ms: int = 10_000
    recordings_dir: str = "var/recordings"
    # "" = the SQLite file at `path`; "sqlite:///path/to.db"; "postgresql://user:pass@host:5432/db" (several nodes)
    url: str = ""

    @property
    def target(self) -> str:
        """What SessionStore opens: `url`, else the SQLite file `path`."""
        return self.url or self.path


@dataclass(frozen=True)
class WebhookSettings:
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    poll_interval_s: float = 1.0
    # Off: webhooks may only reach public addresses (a webhooks:write key must not probe the LAN).
    allow_private_targets: bool = False


@dataclass(frozen=True)
class InterviewSettings:
    invite_expiry_days: int = 7
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class SttSettings:
    engine: str = "auto"  # auto | vosk | whisper: auto takes Vosk when a model for the language is set
    vosk_model_path: str = ""  # a Vosk model folder (see `phonescreen models fetch vosk-en`)
    vosk_language: str = "en"  # the language of vosk_model_path
    whisper_model_path: str = ""  # a CTranslate2 Whisper folder; empty = the bundled tiny.en
    whisper_compute_type: str = "int8"
    # Per decode. Two threads make one tiny.en decode barely faster (~380 vs ~460 ms) at twice the CPU; with
    # several calls and two decodes at once per process, one each leaves the cores to other calls.
    threads: int = 1


@dataclass(frozen=True)
class TtsSettings:
    voice_path: str = ""  # a Piper .onnx voice; empty = the bundled en_US-joe-medium
    length_scale: float = 1.0  # > 1 speaks slower
    # Fixed phrases (greeting and consent, questions, acknowledgements) kept as audio here, so a new media
    # worker speaks them at once instead of spending seconds of CPU on them; empty = ~/.cache/phonescreen/
    # phrases, "off" = in memory only.
    phrase_cache_dir: str = ""


@dataclass(frozen=True)
class LlmSettings:
    backend: str = "embedded"  # embedded (SmolLM2 via llama.cpp) | ollama | none (template wording only)
    embedded_model_path: str = ""  # a GGUF file; empty = the bundled SmolLM2-135M-Instruct
    ollama_host: str = "http://127.0.0.1:11434"
    ollama_model: str = "llama3.2:3b"
    timeout_s: float = 10.0
    threads: int = 1  # llama.cpp threads spin-wait: with STT and TTS on the same 2 cores, 1 is far faster
    # A follow-up's wording must be ready this soon after the answer, or the template's own is spoken.
    # Measured on 2 cores: SmolLM2 gave a usable wording in time for 1 of 12 follow-ups asked, and each
    # miss held the reply 0.3-0.5 s and cost an acknowledgement. At 0.25 s a miss stays under the
    # acknowledgement's own deadline (voice.reply_deadline_ms); a wording begun at the pause had more.
    follow_up_deadline_s: float = 0.25  # after the turn ends the reply waits this long at most


@dataclass(frozen=True)
class VoiceSettings:
    vad_aggressiveness: int = 2  # webrtcvad 0..3
    end_silence_ms: int = 500  # silence that ends a turn
    hesitation_silence_ms: int = 1700  # ... when the words so far trail off ("um", "and", "because")
    # ... when the words up to the pause are transcribed and are a finished thought (not trailing off).
    # Above the ~400 ms people leave between two sentences of one answer (the VAD's 100 ms hangover included).
    complete_silence_ms: int = 450
    min_speech_ms: int = 200  # shorter bursts are noise, not a turn
    barge_in_ms: int = 600  # voiced candidate speech this long during AI playback stops it; "mm-hmm" is shorter
    # No reply audio this long after the endpoint: a cached acknowledgement ("Okay.") starts at once and the
    # reply follows in the same breath. Only for a late reply (an LLM-worded follow-up, a loaded machine):
    # an acknowledgement before every reply is a tic, and it puts the reply's own words half a second later.
    reply_deadline_ms: int = 300


@dataclass(frozen=True)
class SipSettings:
    """The SIP trunk and the media workers that place calls (pjsua2, at most 4 calls per process)."""
    enabled: bool = True  # `phonescreen serve` dials scheduled SIP interviews (media workers start on the first)
    bind_address: str = "127.0.0.1"  # SIP and RTP are bound here
    port: int = 5080  # SIP port of media worker 0; worker N listens on port + N
    rtp_port_start: int = 40000  # worker N takes RTP ports from rtp_port_start + N * rtp_ports_per_worker
    rtp_ports_per_worker: int = 100
    workers: int = 1  # media worker processes
    calls_per_worker: int = 4  # pjsua2-python's wheel allows 4
    from_uri: str = ""  # our identity; empty = sip:interviewer@bind_address:port
    domain: str = ""  # E.164 numbers are dialed as sip:+NUMBER@domain (through outbound_proxy if set)
    outbound_proxy: str = ""  # e.g. sip:proxy.example.com;lr
    registrar: str = ""  # e.g. sip:example.com; empty = no registration
    username: str = ""  # digest credentials for the trunk
    password: str = ""
    realm: str = "*"
    codecs: str = "PCMU,PCMA"  # in order of preference
    ring_timeout_s: float = 45.0  # no answer by then: CANCEL, no_answer
    rtp_timeout_s: float = 10.0  # no RTP this long mid-interview: hang up, partial
    max_call_s: float = 1800.0  # a hard cap per call, whatever the interview does
    # NAT: the address peers must reach us at, written in Contact, Via and the SDP; empty = bind_address
    # (or, when that is 0.0.0.0, the host's default interface). The RTP range is rtp_port_start & co.
    public_address: str = ""
    keep_alive_s: int = 15  # UDP keep-alive to the registrar (0 = off); TLS connections send CRLF pings themselves
    transport: str = "udp"  # udp | tls (worker N listens for TLS on TCP port + N)
    tls_cert_file: str = ""  # PEM certificate (chain) we present; with tls_key_file, or neither (client only)
    tls_key_file: str = ""
    tls_key_password: str = ""  # if tls_key_file is encrypted
    tls_ca_file: str = ""  # the CAs a peer's certificate must come from; empty = the system's bundle
    tls_verify_peer: bool = True  # refuse a peer whose certificate is untrusted or not for its address
    srtp: str = "off"  # off | optional | mandatory (SDES keys in the SDP, so only with transport = tls)
    # Inbound calls: an INVITE to this user (the DID or user the trunk sends, in the request URI or To) is
    # answered and matched by caller ID to the candidate's interview; "" = every INVITE is refused (403).
    inbound_user: str = ""


@dataclass(frozen=True)
class TwilioSettings:
    enabled: bool = False
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""  # E.164, a number of the account
    api_base_url: str = ""  # empty = Twilio's; tests point it at a local double
    machine_detection: str = ""  # "" (off) | Enable | DetectMessageEnd
    stream_token_ttl_s: int = 600  # how long the one-time Media Streams token is valid
    inbound: bool = True  # answer calls to the number (its voice webhook: <public_url>/twilio/voice)


@dataclass(frozen=True)
class HandoffSettings:
    """Where a candidate who asks for a person is put through, and when recruiters take calls."""
    sip_uri: str = ""  # a SIP call is transferred here (REFER), e.g. sip:recruiters@pbx.example.com; "" = never
    phone: str = ""  # a Twilio call is put through here (<Dial>), E.164; "" = never
    hours: str = "09:00-17:00"  # recruiters' hours in `timezone`; outside them a recruiter calls back
    weekdays: str = "mon,tue,wed,thu,fri"
    timezone: str = "UTC"


@dataclass(frozen=True)
class EmailSettings:
    """The SMTP server invitations are sent through; host empty = e-mail invitations are off."""
    host: str = ""
    port: int = 587
    starttls: bool = True  # upgrade the connection with STARTTLS before logging in (port 587)
    ssl: bool = False  # TLS from the first byte instead (port 465)
    ca_file: str = ""  # CAs the server's certificate must come from; empty = the system's bundle
    username: str = ""  # empty = no login
    password: str = ""
    sender: str = ""  # the From address, e.g. "Acme Hiring <jobs@acme.example>"
    timeout_s: float = 30.0


INVITATION_FIELDS = ("candidate_name", "position", "company", "link", "expires")


@dataclass(frozen=True)
class InvitationSettings:
    """What an invitation says and how often a failed one is tried again. Placeholders: {candidate_name},
    {position}, {company}, {link}, {expires} (the date the link stops working)."""
    max_attempts: int = 4  # sends per invitation before it is marked failed (a bounce is never retried)
    backoff_base_s: float = 60.0  # the wait after the first failed send; doubled after each next one
    poll_interval_s: float = 2.0
    email_subject: str = "Your interview for {position} at {company}"
    email_body: str = ("Hello {candidate_name},\n\nThank you for applying for {position} at {company}. Your first "
                       "interview is a short conversation with our AI interviewer, in your browser, whenever it "
                       "suits you before {expires}:\n\n{link}\n\nYou will need a microphone and about 15 "
                       "minutes. The link is personal and works for one session.\n\n{company}")
    sms_body: str = "Hi {candidate_name}, your interview for {position} at {company} is ready: {link}"


def _subject_ok(text: str) -> bool:
    try:
        text.format(**{name: "x" for name in INVITATION_FIELDS})
    except (KeyError, IndexError, ValueError):
        return False
    return True


def _template_ok(text: str) -> bool:
    """A message template whose placeholders are all known (a typo must stop start-up, not a send)."""
    try:
        text.format(**{name: "x" for name in INVITATION_FIELDS})
    except (KeyError, IndexError, ValueError):
        return False
    return "{link}" in text


@dataclass(frozen=True)
class ScoringSettings:
    grader: str = "auto"  # auto | evaluator | feature | llm: auto = the LLM grader with an Ollama model, else evaluator
    seed: int = 42  # the LLM grader runs at temperature 0 with this seed: same transcript, same scorecard
    llm_timeout_s: float = 60.0  # per factor; past it the LLM grader falls back to the feature grader
    min_candidate_words: int = 40  # fewer words in answers: low_confidence, no overall score
    min_answered_share: float = 0.5  # fewer factors answered than this share: low_confidence
    poll_interval_s: float = 2.0  # how often `serve` looks for finished interviews to score


@dataclass(frozen=True)
class ModelSettings:
    dir: str = "var/models"  # where `phonescreen models fetch` puts models


@dataclass(frozen=True)
class RetentionSettings:
    days: int = 0  # recordings and transcripts of interviews ended longer ago are deleted daily; 0 = keep
    keep_scorecards: bool = True  # keep scorecards of purged interviews, without the quoted answers


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "json"  # json | text


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    interviews: InterviewSettings = field(default_factory=InterviewSettings)
    log: LogSettings = field(default_factory=LogSettings)
    stt: SttSettings = field(default_factory=SttSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    invitations: InvitationSettings = field(default_factory=InvitationSettings)
    source: str = "defaults"

    @property
    def public_url(self) -> str:
        return (self.server.public_url or f"http://{self.server.host}:{self.server.port}").rstrip("/")


def _networks_ok(value: str) -> bool:
    try:
        [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]
    except ValueError:
        return False
    return True


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours_ok(value: str) -> bool:
    match = re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]", value)
    return match is not None and value[:5] < value[6:]


def _zone_ok(value: str) -> bool:
    try:
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


_CHECKS = {
    ("server", "port"): lambda v: 0 < v < 65536,
    ("server", "max_body_bytes"): lambda v: v >= 1024,
    ("server", "admin_session_hours"): lambda v: 1 <= v <= 720,
    ("server", "shutdown_grace_s"): lambda v: 0 <= v <= 3600,
    ("server", "shutdown_goodbye_s"): lambda v: 1 <= v <= 300,
    ("server", "recording_url_ttl_s"): lambda v: 10 <= v <= 7 * 86400,
    ("server", "trusted_proxies"): lambda v: _networks_ok(v),
    ("retention", "days"): lambda v: 0 <= v <= 36500,
    ("store", "busy_timeout_ms"): lambda v: v >= 0,
    ("store", "url"): lambda v: v == "" or v.startswith(("sqlite:///", "postgresql://", "postgres://")),
    ("webhooks", "max_attempts"): lambda v: 1 <= v <= 50,
    ("webhooks", "backoff_base_s"): lambda v: v > 0,
    ("webhooks", "backoff_max_s"): lambda v: v > 0,
    ("webhooks", "timeout_s"): lambda v: v > 0,
    ("webhooks", "poll_interval_s"): lambda v: v > 0,
    ("interviews", "invite_expiry_days"): lambda v: 1 <= v <= 365,
    ("log", "level"): lambda v: v in ("debug", "info", "warning", "error"),
    ("log", "format"): lambda v: v in ("json", "text"),
    ("stt", "engine"): lambda v: v in ("auto", "vosk", "whisper"),
    ("stt", "threads"): lambda v: 1 <= v <= 64,
    ("tts", "length_scale"): lambda v: 0.5 <= v <= 2.0,
    ("llm", "backend"): lambda v: v in ("embedded", "ollama", "none"),
    ("llm", "follow_up_deadline_s"): lambda v: 0.05 <= v <= 30,
    ("llm", "timeout_s"): lambda v: v > 0,
    ("llm", "threads"): lambda v: 1 <= v <= 64,
    ("voice", "vad_aggressiveness"): lambda v: 0 <= v <= 3,
    ("voice", "end_silence_ms"): lambda v: 200 <= v <= 3000,
    ("voice", "hesitation_silence_ms"): lambda v: 200 <= v <= 5000,
    ("voice", "complete_silence_ms"): lambda v: 100 <= v <= 3000,
    ("voice", "min_speech_ms"): lambda v: 0 <= v <= 2000,
    ("voice", "barge_in_ms"): lambda v: 20 <= v <= 2000,
    ("voice", "reply_deadline_ms"): lambda v: 0 <= v <= 5000,
    ("sip", "port"): lambda v: 0 < v < 65536,
    ("sip", "rtp_port_start"): lambda v: 1024 <= v < 65000,
    ("sip", "rtp_ports_per_worker"): lambda v: 8 <= v <= 10000,
    ("sip", "workers"): lambda v: 1 <= v <= 64,
    ("sip", "calls_per_worker"): lambda v: 1 <= v <= 4,
    ("sip", "ring_timeout_s"): lambda v: 1 <= v <= 300,
    ("sip", "rtp_timeout_s"): lambda v: 1 <= v <= 300,
    ("sip", "max_call_s"): lambda v: 10 <= v <= 14400,
    ("sip", "public_address"): public_address_ok,
    ("sip", "keep_alive_s"): lambda v: 0 <= v <= 3600,
    ("sip", "transport"): lambda v: v in TRANSPORTS,
    ("sip", "srtp"): lambda v: v in SRTP_MODES,
    ("sip", "inbound_user"): lambda v: v == "" or re.fullmatch(r"[A-Za-z0-9+._~*#-]{1,64}", v) is not None,
    ("twilio", "machine_detection"): lambda v: v in ("", "Enable", "DetectMessageEnd"),
    ("twilio", "stream_token_ttl_s"): lambda v: 30 <= v <= 86400,
    ("handoff", "sip_uri"): lambda v: v == "" or re.fullmatch(r"sips?:[^\s<>]+", v) is not None,
    ("handoff", "phone"): lambda v: v == "" or re.fullmatch(r"\+[1-9][0-9]{6,14}", v) is not None,
    ("handoff", "hours"): _hours_ok,
    ("handoff", "weekdays"): lambda v: bool(v) and all(d.strip() in _WEEKDAYS for d in v.split(",")),
    ("handoff", "timezone"): _zone_ok,
    ("email", "port"): lambda v: 0 < v < 65536,
    ("email", "timeout_s"): lambda v: 1 <= v <= 300,
    ("email", "ca_file"): lambda v: v == "" or Path(v).is_file(),
    ("email", "sender"): lambda v: v == "" or re.fullmatch(r"[^\r\n]*@[^\r\n]*", v) is not None,
    ("invitations", "max_attempts"): lambda v: 1 <= v <= 20,
    ("invitations", "backoff_base_s"): lambda v: 0 < v <= 86400,
    ("invitations", "poll_interval_s"): lambda v: 0.1 <= v <= 300,
    ("invitations", "email_subject"): lambda v: "\n" not in v and _subject_ok(v),
    ("invitations", "email_body"): _template_ok,
    ("invitations", "sms_body"): _template_ok,
    ("scoring", "grader"): lambda v: v in ("auto", "evaluator", "feature", "llm"),
    ("scoring", "llm_timeout_s"): lambda v: 1 <= v <= 600,
    ("scoring", "min_candidate_words"): lambda v: 0 <= v <= 10000,
    ("scoring", "min_answered_share"): lambda v: 0 <= v <= 1,
    ("scoring", "poll_interval_s"): lambda v: 0.1 <= v <= 300,
}


def _sections() -> dict[str, type]:
    hints = get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if f.name != "source"}


def _coerce(kind: type, value: Any, where: str, from_env: bool) -> Any:
    if from_env and isinstance(value, str):
        try:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except ValueError:
            raise SettingsError(f"{where}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise SettingsError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults < TOML file < environment. `path` None means $PHONESCREEN_CONFIG, else ./phonescreen.toml
    if it exists, else defaults only."""
    env = os.environ if env is None else env
    if path is None:
        path = env.get("PHONESCREEN_CONFIG") or ("phonescreen.toml" if Path("phonescreen.toml").exists() else None)
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{source}: settings file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{source}: invalid TOML: {exc}") from None
    sections = _sections()
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for name, table in raw.items():
        if name not in sections:
            raise SettingsError(f"{source}: unknown section [{name}]; known: {', '.join(sections)}")
        if not isinstance(table, dict):
            raise SettingsError(f"{source}: [{name}] must be a table, got {table!r}")
        for key, value in table.items():
            values[name][key] = (value, f"{source}: {name}.{key}", False)
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var in ENV_RESERVED:
            continue
        rest = var[len(ENV_PREFIX):].lower()
        name, _, key = rest.partition("_")
        if name not in sections or not key:
            raise SettingsError(f"environment: unknown setting {var}={value!r}")
        values[name][key] = (value, f"environment: {var}", True)
    built: dict[str, Any] = {}
    for name, cls in sections.items():
        hints = get_type_hints(cls)
        kwargs = {}
        for key, (value, where, from_env) in values[name].items():
            if key not in hints:
                raise SettingsError(f"{where}: unknown key {key!r} = {value!r}; known: {', '.join(hints)}")
            kwargs[key] = _coerce(hints[key], value, where, from_env)
            check = _CHECKS.get((name, key))
            if check and not check(kwargs[key]):
                raise SettingsError(f"{where}: value {kwargs[key]!r} is out of range")
        built[name] = cls(**kwargs)
    for key, message in sip_problems(built["sip"]):  # keys that only make sense together, and TLS files
        where = values["sip"][key][1] if key in values["sip"] else f"{source}: sip.{key} (unset)"
        raise SettingsError(f"{where}: {message}")
    return Settings(**built, source=source)
