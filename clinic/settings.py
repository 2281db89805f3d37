"""OphAI Clinic settings, read from the environment.

Embedded default (no environment): DEBUG on, SQLite, django-q2 on the ORM broker, media under
var/media, template summaries. Production (DJANGO_ENV=production): every secret and host must
come from the environment, and missing ones fail loudly at start-up.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.env import (
    env_bool,
    env_int,
    env_list,
    env_s3_media_storage,
    env_secret,
    env_str,
    require,
    web_address,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OPHAI_VAR_DIR", str(BASE_DIR / "var")))

DJANGO_ENV = env_str("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "production"}:
    raise ValueError(f"DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}")
IS_PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DEBUG", default=not IS_PRODUCTION)


def _development_secret_key() -> str:
    """A random key kept in var/, so development sessions survive restarts."""
    key_file = VAR_DIR / "dev-secret-key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)
    return key


SECRET_KEY = env_secret("SECRET_KEY")
if IS_PRODUCTION:
    require("SECRET_KEY", SECRET_KEY)
elif not SECRET_KEY:
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if IS_PRODUCTION else ["localhost", "127.0.0.1", "[::1]"]
)
if IS_PRODUCTION:
    require("ALLOWED_HOSTS", ",".join(ALLOWED_HOSTS))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "clinic.third_party_apps.TaskQueueConfig",  # django_q
    "clinic.third_party_apps.SignInLockoutsConfig",  # axes
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "clinic",
    "patients",
    "screening",
    "ai_engine",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.audit.AuditContextMiddleware",
    # A view that cannot reach the database or the media bucket answers 503 "please retry",
    # not 500. Errors of the middlewares (session, auth, axes) never reach another middleware:
    # Django answers them where they are raised, through handler500 (core.errors.server_error),
    # which does the same.
    "core.middleware.ServiceUnavailableMiddleware",
    # Last, as django-axes requires: turns a locked-out sign-in into clinic.lockout's response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "clinic.context_processors.clinic",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # Web server and workers share one SQLite file: WAL and immediate transactions
            # keep "database is locked" away for a single-machine clinic.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Task queue (django-q2) -----------------------------------------------------------------
# `retry` must exceed `timeout`, or a long task is handed to a second worker while the first
# still runs. `max_attempts` bounds redelivery; tasks also keep their own attempt counts.
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    "name": "default",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 300),
    "retry": env_int("Q_TIMEOUT", 300) + 60,
    "max_attempts": 3,
    "recycle": 500,
    "save_limit": 1000,
    "ack_failures": True,
    "catch_up": False,
    "label": "Django Q2",
    "ALT_CLUSTERS": {
        "ai": {
            "workers": env_int("AI_WORKERS", 1),
            "timeout": env_int("AI_TASK_TIMEOUT", 600),
            "retry": env_int("AI_TASK_RETRY", env_int("AI_TASK_TIMEOUT", 600) + 120),
            "max_attempts": 3,
            "recycle": 200,
            # kilobytes: a worker that grew past this is replaced after its task
            "max_rss": env_int("AI_WORKER_MAX_RSS_KB", 3_000_000),
        },
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# django-axes in front of the model backend: the web, admin and API sign-ins share one counter.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
# Per account and address: staff behind one clinic NAT do not lock each other out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "clinic.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "core.context.client_ip"
AXES_VERBOSE = False
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static and private media ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Media are private: no URL pattern serves MEDIA_ROOT. Files go out through permission-checked
# views (FileResponse, or X-Accel-Redirect to an nginx `internal` location when set).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/private-media/"
MEDIA_X_ACCEL_PREFIX = env_str("MEDIA_X_ACCEL_PREFIX")
# With MEDIA_S3_BUCKET set, media live in an S3-compatible bucket shared by every web and worker
# host (core.storage); MEDIA_ROOT is then unused. Otherwise the local folder above.
MEDIA_S3_STORAGE = env_s3_media_storage()
if MEDIA_S3_STORAGE and MEDIA_X_ACCEL_PREFIX:
    raise ImproperlyConfigured(
        "MEDIA_X_ACCEL_PREFIX hands files to nginx from a local folder; it cannot serve media "
        "stored in MEDIA_S3_BUCKET (Django streams those). Unset one of them."
    )
STORAGES = {
    "default": MEDIA_S3_STORAGE or {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

FUNDUS_UPLOAD_MAX_BYTES = env_int("FUNDUS_UPLOAD_MAX_BYTES", 40 * 1024 * 1024)
FUNDUS_UPLOAD_MAX_PIXELS = env_int("FUNDUS_UPLOAD_MAX_PIXELS", 40_000_000)
FUNDUS_UPLOAD_MIN_SIDE = env_int("FUNDUS_UPLOAD_MIN_SIDE", 256)
# Multipart bodies with two camera photos must pass Django's own limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- The clinic -----------------------------------------------------------------------------
# Empty means the translated default name ("OphAI Eye Screening Clinic"), see core.branding.
CLINIC_NAME = env_str("CLINIC_NAME")
CLINIC_ADDRESS = env_str("CLINIC_ADDRESS")
CLINIC_PHONE = env_str("CLINIC_PHONE")
CLINIC_WEBSITE = env_str("CLINIC_WEBSITE")
# A PNG/JPEG printed in the report header: an absolute path on disk, or a name in the media
# storage (e.g. "branding/logo.png"); empty for none. `check` warns when it cannot be read.
CLINIC_LOGO = env_str("CLINIC_LOGO")
PATIENT_ID_PREFIX = env_str("PATIENT_ID_PREFIX", "P")
# How visual acuity is shown: "five_point" (五分记录, GB/T 11533, what Chinese clinics write)
# or "decimal". Each user may choose their own (My settings); reports use this one.
VA_NOTATION = env_str("VA_NOTATION", "five_point")
if VA_NOTATION not in ("five_point", "decimal"):
    raise ImproperlyConfigured("VA_NOTATION must be five_point or decimal.")

# --- Security (production) ------------------------------------------------------------------
# How many proxies in front of Django each add the address they saw to X-Forwarded-For (the
# shipped nginx sets it to the client's address: 1). 0 ignores the header. One function,
# core.context.client_ip, reads it for the audit log, the API throttles, django-axes and the
# WeChat binding limits; a client-written X-Forwarded-For never picks its own bucket.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if IS_PRODUCTION else 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 or more, not {TRUSTED_PROXY_COUNT}")
if env_str("TRUST_X_FORWARDED_FOR"):
    raise ImproperlyConfigured(
        "TRUST_X_FORWARDED_FOR was replaced by TRUSTED_PROXY_COUNT (the number of proxies in "
        "front of Django: 1 behind the shipped nginx, 0 for none). See README, 'Configuration'."
    )
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
X_FRAME_OPTIONS = "DENY"
# Scripts only from this site's static files: no template has inline script or on* handlers
# (tests/clinic/test_csp.py checks them, tests/web the pages in Chromium). Inline styles stay
# allowed: the UI and Django's admin set style attributes (e.g. probability bar widths).
# blob: is the upload preview of a photo before it is sent.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if IS_PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("TRUST_X_FORWARDED_PROTO", True):
        # Behind nginx, which sets X-Forwarded-Proto; see README "Deployment".
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logs.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "plain"),
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # WeasyPrint logs every rendering step at INFO.
        "weasyprint.progress": {"level": "WARNING"},
    },
}

# --- Workflow hooks -------------------------------------------------------------------------
# Earlier apps start later steps by the later app's task name (DESIGN §1), never by import.
AI_CLUSTER_NAME = env_str("AI_CLUSTER_NAME", "ai")
FUNDUS_ANALYSIS_TASK = env_str("FUNDUS_ANALYSIS_TASK", "ai_engine.tasks.analyse_image")
REVIEW_SIGNED_TASK = env_str("REVIEW_SIGNED_TASK", "reports.tasks.generate_report_for_record")
# Reports printed together as one PDF at most (each holds ~15 MB while the batch is laid out).
REPORT_BATCH_MAX = env_int("REPORT_BATCH_MAX", 100)
REPORT_FINAL_TASK = env_str("REPORT_FINAL_TASK", "clinic.webhooks.report_final_webhook")

# --- Reports --------------------------------------------------------------------------------
# An OpenAI-compatible server writes the patient summary; without one, the template does.
# LLM_TIMEOUT × (LLM_MAX_RETRIES + 1) × 2 must fit in Q_CLUSTER["timeout"] (check reports.E001).
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_secret("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL")
LLM_TIMEOUT = float(env_int("LLM_TIMEOUT", 20))
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 1)
# The QR code on each report points at {REPORT_VERIFY_BASE_URL}/api/v1/reports/verify/<code>:
# the public address patients' phones reach. Development prints reports for this computer only.
REPORT_VERIFY_BASE_URL = env_str(
    "REPORT_VERIFY_BASE_URL", "" if IS_PRODUCTION else "http://localhost:8000"
)
if IS_PRODUCTION:
    require("REPORT_VERIFY_BASE_URL", REPORT_VERIFY_BASE_URL)
web_address("REPORT_VERIFY_BASE_URL", REPORT_VERIFY_BASE_URL)

# --- REST API -------------------------------------------------------------------------------
# JWT first: an expired or missing token answers 401 with a WWW-Authenticate header, which
# tells the mini-program to refresh; the session serves the staff web UI (see README "API").
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.CursorPage",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Stock DRF throttles agree with core.context.client_ip (ours call it directly).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
# Requests per scope and client (user, or IP address when anonymous); read at request time.
API_THROTTLE_RATES = {
    "login": env_str("API_THROTTLE_LOGIN", "10/minute"),
    "wechat_bind": env_str("API_THROTTLE_WECHAT_BIND", "10/hour"),
    "upload": env_str("API_THROTTLE_UPLOAD", "120/minute"),
    # the public report verification (GET reports/verify/<code>/)
    "verify": env_str("API_THROTTLE_VERIFY", "60/minute"),
}
# Failed first-time bindings of a WeChat account allowed per openid and per IP in 15 minutes.
WECHAT_BIND_MAX_FAILURES = env_int("WECHAT_BIND_MAX_FAILURES", 5)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": dt.timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": dt.timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# The OpenAPI schema and Swagger UI (/api/schema/, /api/docs/): open in development, signed-in
# staff only in production unless set.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", not IS_PRODUCTION)
SPECTACULAR_SETTINGS = {
    "TITLE": "OphAI Clinic API",
    "DESCRIPTION": "REST API v1 for the WeChat mini-program and integrations (see README, API).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Served from this site's static files: clinics may be offline (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReportStatusEnum": "reports.models.ReportStatus",
        "RecordStatusEnum": "screening.models.RecordStatus",
        "AnalysisStatusEnum": "ai_engine.models.AnalysisStatus",
        "CorrectionEnum": "screening.models.Correction",
        "ConclusionCodeEnum": "screening.models.ConclusionCode",
        "RecommendationEnum": "screening.models.Recommendation",
    },
}
# WeChat mini-program login (jscode2session); the base URL is configurable so tests run a
# local server. The secret comes from the environment or WECHAT_SECRET_FILE.
WECHAT_API_BASE = env_str("WECHAT_API_BASE", "https://api.weixin.qq.com")
WECHAT_APPID = env_str("WECHAT_APPID")
WECHAT_SECRET = env_secret("WECHAT_SECRET")
WECHAT_TIMEOUT = float(env_int("WECHAT_TIMEOUT", 5))
# Outbound webhook when a report becomes final (signed with HMAC-SHA256, see README "API").
REPORT_WEBHOOK_URL = env_str("REPORT_WEBHOOK_URL")
REPORT_WEBHOOK_SECRET = env_secret("REPORT_WEBHOOK_SECRET")
REPORT_WEBHOOK_TIMEOUT = float(env_int("REPORT_WEBHOOK_TIMEOUT", 10))
REPORT_WEBHOOK_MAX_ATTEMPTS = env_int("REPORT_WEBHOOK_MAX_ATTEMPTS", 6)
REPORT_WEBHOOK_BACKOFF_SECONDS = env_int("REPORT_WEBHOOK_BACKOFF_SECONDS", 30)

# --- AI engine ------------------------------------------------------------------------------
AI_DEVICE = env_str("AI_DEVICE", "auto")  # auto | cpu | cuda
AI_MODEL_DIRS = env_list("AI_MODEL_DIRS", [str(BASE_DIR / "ai_engine" / "packages")])
# Bundled packages that `register_model --bundled --activate-if-none` (make run) activates on a
# fresh machine; the other bundled packages are registered inactive.
AI_DEFAULT_PACKAGES = env_list("AI_DEFAULT_PACKAGES", ["ophai-screening", "ophai-dr", "ophai-dme"])
AI_TASK_TIMEOUT = Q_CLUSTER["ALT_CLUSTERS"]["ai"]["timeout"]
AI_MAX_ATTEMPTS = env_int("AI_MAX_ATTEMPTS", 3)
AI_RECONCILE_GRACE = env_int("AI_RECONCILE_GRACE", 60)
AI_QUEUED_STALE_SECONDS = env_int("AI_QUEUED_STALE_SECONDS", 900)
AI_RECONCILE_LOOKBACK_DAYS = env_int("AI_RECONCILE_LOOKBACK_DAYS", 7)
# The learning loop (README "Learning loop"): promote_model's gate and the drift watch.
AI_PROMOTION_MARGIN = float(env_str("AI_PROMOTION_MARGIN", "0.02"))
AI_PROMOTION_MIN_CASES = env_int("AI_PROMOTION_MIN_CASES", 30)
AI_PROMOTION_MAIN_CONDITION = env_str("AI_PROMOTION_MAIN_CONDITION", "dr")
AI_TRAINING_KEY_SALT = env_secret("AI_TRAINING_KEY_SALT")  # empty: SECRET_KEY salts the keys
AI_DRIFT_BAND = float(env_str("AI_DRIFT_BAND", "0.10"))  # absolute change vs the baseline
AI_DRIFT_BASELINE_WEEKS = env_int("AI_DRIFT_BASELINE_WEEKS", 8)
AI_DRIFT_WEEKS = env_int("AI_DRIFT_WEEKS", 12)

# --- Operations -----------------------------------------------------------------------------
HEALTH_MIN_FREE_DISK_GB = env_int("HEALTH_MIN_FREE_DISK_GB", 2)
