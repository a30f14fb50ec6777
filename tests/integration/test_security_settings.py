"""Production settings: refuse to start when unsafe, and pass ``check --deploy`` with no warning.

Each case imports the real settings module in a fresh interpreter with a controlled
environment (nothing inherited but PATH), exactly as a production process would start.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from shop.contexts import CONTEXTS, database_url_variable

ROOT = Path(__file__).resolve().parents[2]


def production_env(**overrides) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "ALLOWED_HOSTS": "shop.example.com",
        "STRIPE_API_KEY": "sk_live_" + secrets.token_urlsafe(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24),
        "LOG_JSON": "true",
    }
    for alias in CONTEXTS:
        env[database_url_variable(alias)] = f"postgres://shop@db.internal:5432/shop_{alias}"
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def import_settings(env: dict) -> subprocess.CompletedProcess:
    return run(["-c", "import config.settings"], env)


def test_complete_production_environment_starts():
    result = import_settings(production_env())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"JWT_SIGNING_KEY": None}, "JWT_SIGNING_KEY"),
        ({"ACCOUNTS_DATABASE_URL": None}, "ACCOUNTS_DATABASE_URL"),
        ({"PAYMENTS_DATABASE_URL": ""}, "PAYMENTS_DATABASE_URL"),
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"JWT_SIGNING_KEY": "short"}, "at least 32 characters"),
        ({"JWT_SIGNING_KEY": "same-" * 20, "SECRET_KEY": "same-" * 20}, "must differ from SECRET_KEY"),
        ({"REDIS_URL": None}, "REDIS_URL is required"),
        ({"SECRET_KEY": "compose-only-secret-change-me-0123456789abcdefghijklmnopqrstuvwxyz"}, "placeholder"),
        ({"STRIPE_API_KEY": None}, "STRIPE_API_KEY is required"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET is required"),
        ({"STRIPE_API_BASE": "http://api.stripe.com"}, "STRIPE_API_BASE must be an https:// URL"),
    ],
)
def test_production_refuses_to_start_with_a_clear_message(overrides, message):
    result = import_settings(production_env(**overrides))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_refuses_the_fake_gateway_that_ships_goods_for_free():
    """Finding 1: with the fake gateway an order paid with ``tok_visa`` was CAPTURED and shipped
    with no money taken. Production now refuses to start with it, explicitly set or not."""
    explicit = import_settings(production_env(PAYMENT_GATEWAY="fake"))
    assert explicit.returncode != 0
    assert "PAYMENT_GATEWAY must be 'stripe'" in explicit.stderr

    defaulted = run(["-c", "from django.conf import settings; print(settings.PAYMENT_GATEWAY)"], production_env())
    assert defaulted.returncode == 0, defaulted.stderr
    assert defaulted.stdout.strip() == "stripe"


def test_compose_ships_no_usable_secret_in_production_mode():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app_env = compose["x-app"]["environment"]
    assert app_env["DJANGO_ENV"] == "production"
    for name in ("SECRET_KEY", "JWT_SIGNING_KEY", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert app_env[name].startswith("${" + name + ":?"), f"{name} must be required, not defaulted"
    assert app_env["PAYMENT_GATEWAY"] == "stripe"
    assert ":?" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]


def test_check_deploy_passes_with_zero_warnings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


def test_argon2_is_the_production_password_hasher():
    # config.settings_test swaps in a fast hasher; the production module itself must not.
    base = sys.modules["config.settings"]
    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_secrets_live_in_the_environment_not_in_git():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    example = (ROOT / ".env.example").read_text()
    for name in (
        "SECRET_KEY",
        "JWT_SIGNING_KEY",
        "ACCOUNTS_DATABASE_URL",
        "REDIS_URL",
        "ALLOWED_ORIGINS",
        "TRUSTED_PROXY_COUNT",
        "RATELIMIT_ENABLED",
        "RATELIMIT_LOGIN",
        "RATELIMIT_REGISTER",
        "RATELIMIT_USER",
        "RATELIMIT_ANON",
        "RATELIMIT_ORDERS",
        "RATELIMIT_PAYMENTS",
        "MAX_REQUEST_BODY_BYTES",
    ):
        assert f"\n{name}=" in example, name
