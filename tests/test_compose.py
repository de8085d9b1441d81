"""docker-compose.yml: Redis with AOF and a password from the env file; commands exist."""

from __future__ import annotations

import tomllib
import yaml

from submitter.cli import build_parser
from tests.conftest import REPO_ROOT


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_redis_has_aof_and_a_password_from_the_env_file():
    redis = _compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--requirepass" in command
    assert "$$REDIS_PASSWORD" in command  # from the env file, never written in the file
    assert redis["env_file"] == ".env"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    example = (REPO_ROOT / ".env.example").read_text()
    assert "REDIS_PASSWORD=" in example and "REDIS_URL=" in example


def test_worker_command_is_a_console_script_with_a_real_subcommand():
    worker = _compose()["services"]["worker"]
    script, subcommand, *rest = worker["command"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert script in scripts
    args = build_parser().parse_args([subcommand, *rest])
    assert args.command == "worker" and args.home == "/storage"
    assert any(v.endswith(":/storage") for v in worker["volumes"])


def test_the_optional_dashboard_runs_factory_dashboard_on_the_same_redis():
    dashboard = _compose()["services"]["dashboard"]
    script, subcommand, *rest = dashboard["command"]
    assert script == "factory" and dashboard["env_file"] == ".env"
    args = build_parser().parse_args([subcommand, *rest])
    assert args.command == "dashboard" and args.bind == "0.0.0.0" and args.port == 9181
    assert dashboard["profiles"] == ["dashboard"]  # not started by a plain `up`
    assert all(p.startswith("127.0.0.1:") for p in dashboard["ports"])
