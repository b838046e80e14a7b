"""Checks of deploy/ (Dockerfile, nginx, compose, Kubernetes, Prometheus) against the code.

Docker and Kubernetes do not run on the development machine, so these files are checked
here instead: every ``FACESOCIAL_*`` variable is a real setting (and the values parse), every
``facesocial ...`` command parses with the real CLI, probes and gateway locations name real
routes of the app, alerts use metrics the app exports, the pieces refer to each other by the
right names, and no real secret is committed. ``nginx -t`` and ``promtool`` run when present.
The job workers and beat (docs/jobs.md) run the API's image with the API's settings, share its
spool folder, and the daily upkeep runs once (beat's tasks are not scheduled a second time).
"""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_origin

import pytest
import typer.main
from prometheus_client.metrics import MetricWrapperBase
from pydantic import BaseModel

from facesocial import metrics as app_metrics
from facesocial.api import errors as api_errors
from facesocial.cli import app as cli_app
from facesocial.domains.deepfake.service import RETENTION_DAYS as ANALYSIS_RETENTION_DAYS
from facesocial.settings import ModelSettings, Settings, VideoLimits

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install 'pyyaml>=6,<7')")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"
NAMESPACE = "facesocial"
# Documented future services (document 001): routed by the gateway, answered 404 until they exist.
FUTURE_PREFIXES: tuple[str, ...] = ()
# The commands the deployment must run somewhere (`worker` runs the jobs, `beat` their schedules).
REQUIRED_COMMANDS = {"serve", "db upgrade", "db maintain", "models pull", "worker", "beat"}
# Daily tasks that `facesocial beat` sends (src/facesocial/jobs/celery_app.py): no other schedule
# may run them again.
BEAT_OWNED_COMMANDS = {"audit rollup"}
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|CHIP_KEY|_AUTH$)", re.IGNORECASE)
PLACEHOLDER = "REPLACE_ME"

if not DEPLOY.is_dir():  # pragma: no cover - the repository always has it
    pytest.skip(f"{DEPLOY} is missing", allow_module_level=True)


# --------------------------------------------------------------------------- loading helpers


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def _load(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def _text_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _string_lists(node: Any) -> Iterator[list[str]]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _string_lists(value)
    elif isinstance(node, list):
        if node and all(isinstance(item, str) for item in node):
            yield node
        for item in node:
            yield from _string_lists(item)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (document,) = _load(DEPLOY / "compose.yaml")
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    resources = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in _load(path):
                resources.append({**doc, "_file": path.name})
    return resources


def _one(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def _pod_labels(resource: dict[str, Any]) -> dict[str, str]:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and In/NotIn/Exists expressions)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


@pytest.fixture(scope="module")
def app_paths(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The routes of the real FastAPI app (built on an empty data folder: no models needed)."""
    from facesocial.api.app import create_app
    from facesocial.container import Container

    data = tmp_path_factory.mktemp("deploy-app")
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'facesocial.db'}",
        redis_url="",
        milvus_uri="",
        models=ModelSettings(model_dir=data / "models"),
    )
    container = Container(settings)
    try:
        app = create_app(container)
        paths = set(_route_paths(app.routes))
        assert set(app.openapi()["paths"]) <= paths and {"/health", "/health/ready", "/metrics"} <= paths
        return paths
    finally:
        container.close()


def _route_paths(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """Every route path, also inside included routers (newer FastAPI includes them lazily)."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            yield prefix + path
        included = getattr(route, "original_router", None)
        if included is not None:
            extra = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from _route_paths(included.routes, prefix + extra)


def _served(path: str, app_paths: set[str], *, prefix: bool) -> bool:
    """Whether a gateway path is a route of the app (or, for prefixes, starts some route)."""
    if path in app_paths:
        return True
    base = path.rstrip("/")
    return prefix and any(route.startswith(base + "/") for route in app_paths)


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """ARG defaults before the first FROM, and the stages with their (INSTRUCTION, rest) pairs."""
    lines: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue  # comments and blank lines, also inside continuations (as Docker does)
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(words[0], name))
        elif not stages:
            if instruction == "ARG" and "=" in rest:
                key, _, value = rest.partition("=")
                args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append((instruction, rest.strip()))
    return args, stages


def _chain(stages: list[Stage], name: str) -> list[Stage]:
    """A stage and the stages it builds on, nearest first."""
    by_name = {s.name: s for s in stages}
    chain = [by_name[name]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def _exec_form(rest: str) -> list[str]:
    if rest.startswith("["):
        return list(json.loads(rest))
    return ["sh", "-c", rest]


def _last(chain: list[Stage], instruction: str) -> str | None:
    for stage in chain:
        for name, rest in reversed(stage.instructions):
            if name == instruction:
                return rest
    return None


def _dockerfile_env(chain: list[Stage]) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in reversed(chain):
        for name, rest in stage.instructions:
            if name == "ENV":
                for word in shlex.split(rest):
                    key, _, value = word.partition("=")
                    env[key] = value
    return env


def test_dockerfile_stages_user_env_healthcheck_and_cmd() -> None:
    args, stages = _dockerfile()
    base = stages[0].base
    if base.startswith("${"):
        base = args[base.strip("${}")]
    assert base.startswith("python:3.11-slim")
    assert all(s.base in {stages[0].base} | {t.name for t in stages} for s in stages)
    build = " ".join(rest for name, rest in stages[0].instructions if name == "RUN")
    assert 'pip install ".[milvus]"' in build

    final = _chain(stages, stages[-1].name)
    user = _last(final, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0"), "the API must not run as root"
    env = _dockerfile_env(final)
    assert env["FACESOCIAL_MODELS__MODEL_DIR"] == "/models"
    assert env["FACESOCIAL_MODELS__AUTO_PULL"] == "false"
    volumes = " ".join(rest for stage in final for name, rest in stage.instructions if name == "VOLUME")
    assert "/models" in volumes
    healthcheck = _last(final, "HEALTHCHECK")
    assert healthcheck is not None and "/health'" in healthcheck and "8000" in healthcheck
    cmd = _exec_form(_last(final, "CMD") or "")
    assert cmd == ["facesocial", "serve", "--host", "0.0.0.0", "--port", "8000"]

    models = _chain(stages, "models")
    installs = " ".join(rest for stage in models for name, rest in stage.instructions if name == "RUN")
    assert "npm" in installs, "`facesocial models pull` needs npm in the models image"
    assert (_last(models, "USER") or "root").split(":")[0] not in ("root", "0")
    assert _exec_form(_last(models, "CMD") or "") == ["facesocial", "models", "pull"]

    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "README.md", "src/"):
        assert f"!{needed}" in ignore


# --------------------------------------------------------------------------- settings


def _setting_problem(name: str) -> str | None:
    """None when FACESOCIAL_A__B__C names a field of Settings, else what is wrong."""
    parts = name.removeprefix("FACESOCIAL_").lower().split("__")
    model: type[BaseModel] = Settings
    for index, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return f"{model.__name__} has no field {part!r}"
        annotation = info.annotation
        last = index == len(parts) - 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if last:
                return None  # a whole section given as JSON
            model = annotation
            continue
        if not last:
            kind = "dict (set it as JSON)" if get_origin(annotation) is dict else "scalar"
            return f"{model.__name__}.{part} is a {kind}, not a section"
        return None
    return None


def test_every_facesocial_variable_is_a_setting() -> None:
    pattern = re.compile(r"\bFACESOCIAL_[A-Z0-9_]*[A-Z0-9]\b")
    seen: dict[str, set[str]] = {}
    for path in _text_files():
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            seen.setdefault(name, set()).add(str(path.relative_to(DEPLOY)))
    assert "FACESOCIAL_AUTH__JWT_SECRET" in seen
    problems = {
        name: f"{problem} (in {sorted(files)})"
        for name, files in seen.items()
        if (problem := _setting_problem(name))
    }
    assert not problems


def test_setting_resolution_rejects_unknown_names() -> None:
    assert _setting_problem("FACESOCIAL_MODELS__MODEL_DIR") is None
    assert _setting_problem("FACESOCIAL_RATE_LIMITS__LIMITS") is None
    assert _setting_problem("FACESOCIAL_MODEL_DIR") is not None
    assert _setting_problem("FACESOCIAL_MODELS__NOPE") is not None
    assert _setting_problem("FACESOCIAL_THRESHOLDS__DLIB_RESNET_V1") is not None


def _interpolated(value: Any) -> str:
    """A compose value with ${VAR...} replaced by a stand-in (the value itself is tested apart)."""
    return re.sub(r"\$\{[^}]*\}", "placeholder-" + "x" * 32, str(value))


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _interpolated(v) for k, v in env.items()}


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for key in list(os.environ):
        if key.startswith("FACESOCIAL_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("FACESOCIAL_"):
            monkeypatch.setenv(key, value)
    return Settings()


def _assert_scaled(settings: Settings) -> None:
    assert settings.database_url.startswith("postgresql://")
    assert settings.resolved_database_url().startswith("postgresql+psycopg://")
    assert settings.redis_url.startswith("redis://")
    assert settings.milvus_uri == "http://milvus:19530"
    assert settings.auth.jwt_secret is not None
    assert settings.models.model_dir == Path("/models")
    assert settings.models.auto_pull is False
    assert settings.models.intra_op_threads == 1
    # Jobs on Celery, one callback master secret for API and workers, a spool folder set
    # explicitly (the default, data_dir/jobs, is each container's own folder).
    assert settings.jobs.broker_url.startswith("redis://")
    assert settings.jobs.callback_secret is not None
    assert settings.jobs.spool_dir is not None and settings.jobs.spool_dir.is_absolute()
    assert not str(settings.jobs.spool_dir).startswith(str(settings.data_dir))


def test_compose_settings_values_parse(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("api", "worker", "beat", "migrate", "maintenance"):
        with monkeypatch.context() as patch:
            _assert_scaled(_settings_from(_compose_env(compose["services"][name]), patch))


def test_kubernetes_settings_values_parse(k8s: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**_one(k8s, "ConfigMap")["data"], **_one(k8s, "Secret")["stringData"]}
    _assert_scaled(_settings_from(env, monkeypatch))


# --------------------------------------------------------------------------- CLI commands

SHELL_PUNCTUATION = re.compile(r"^[;&|()<>]+$")
SHELL_PREFIXES = {"exec", "then", "do", "else", "time", "nohup", "env"}


def _invocations(text: str) -> Iterator[list[str]]:
    """The argument lists of each `facesocial` command in a shell script."""
    for line in text.replace("\\\n", " ").splitlines():
        yield from _line_invocations(line)


def _line_invocations(text: str) -> Iterator[list[str]]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = text.split()
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else ";"
        at_command = (
            SHELL_PUNCTUATION.match(previous) or previous in SHELL_PREFIXES or re.match(r"^\w+=", previous)
        )
        if at_command and (token == "facesocial" or token.endswith("/bin/facesocial")):
            args: list[str] = []
            for following in tokens[index + 1 :]:
                if SHELL_PUNCTUATION.match(following) or following == "facesocial":
                    break
                args.append(following)
            if args:
                yield args


def _commands_in(node: Any) -> list[list[str]]:
    found: list[list[str]] = []
    for strings in _string_lists(node):
        if strings[0] == "facesocial" and len(strings) > 1:
            found.append(strings[1:])
    for text in _strings(node):
        found.extend(_invocations(text))
    return found


def _check_cli(args: list[str]) -> str:
    """Parse the arguments with the real click command tree; return the command path."""
    # typer may vendor its own click: work on the objects, not on click's classes.
    command: Any = typer.main.get_command(cli_app)
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "commands"):
        assert rest, f"`facesocial {' '.join(path)}` needs a subcommand"
        name = rest.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, f"`facesocial {' '.join([*path, name])}` is not a command"
        path.append(name)
        command = sub
    try:
        command.make_context(" ".join(["facesocial", *path]), rest)
    except Exception as exc:  # click's usage errors, whichever click typer uses
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"`facesocial {' '.join(args)}`: {message}")
    return " ".join(path)


def test_every_command_is_a_real_cli_command(compose: dict[str, Any], k8s: list[dict[str, Any]]) -> None:
    _, stages = _dockerfile()
    docker = [
        args
        for stage in stages
        for name, rest in stage.instructions
        if name in ("CMD", "ENTRYPOINT", "RUN")
        for args in _commands_in(_exec_form(rest))
    ]
    surfaces = {
        "Dockerfile": docker,
        "compose.yaml": _commands_in(compose),
        "kubernetes": _commands_in([{k: v for k, v in r.items() if k != "_file"} for r in k8s]),
    }
    for surface, invocations in surfaces.items():
        commands = {_check_cli(args) for args in invocations}
        if surface == "Dockerfile":
            assert {"serve", "models pull"} <= commands
        else:
            assert commands >= REQUIRED_COMMANDS, f"{surface} lacks {REQUIRED_COMMANDS - commands}"
            assert not commands & BEAT_OWNED_COMMANDS, f"{surface}: beat already runs {BEAT_OWNED_COMMANDS}"
            for args in invocations:
                if args[:2] == ["db", "maintain"]:
                    # Beat's retention removes analyses after six months and erases their
                    # known-content vectors; `db maintain` deleting them first would skip that.
                    days = _option(args, "--analyses-days")
                    assert days is not None and int(days) > ANALYSIS_RETENTION_DAYS, (
                        f"{surface}: `facesocial {' '.join(args)}` deletes the analyses beat's retention owns"
                    )


def _option(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in an argument list."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def test_cli_check_catches_mistakes() -> None:
    assert _check_cli(["db", "maintain", "--logs-days", "30"]) == "db maintain"
    for wrong in (["db", "migrate"], ["serve", "--bind", "x"], ["models"]):
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            _check_cli(wrong)
    assert list(_invocations("a=0; facesocial db maintain || a=1; exit $a")) == [["db", "maintain"]]
    assert list(_invocations("x >&2\nfacesocial audit rollup")) == [["audit", "rollup"]]
    assert _check_cli(["worker", "--concurrency", "1"]) == "worker"
    assert _option(["db", "maintain", "--analyses-days=9"], "--analyses-days") == "9"
    assert _option(["db", "maintain"], "--analyses-days") is None
    assert not list(_invocations("useradd --gid facesocial --create-home facesocial"))


# --------------------------------------------------------------------------- nginx


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def first(self, name: str) -> Directive | None:
        found = self.all(name)
        return found[0] if found else None


def _nginx_parse(text: str) -> Directive:
    token_re = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|#[^\n]*|[{};]|[^\s{};'"]+""")
    tokens = [t for t in token_re.findall(text) if not t.startswith("#")]

    def block(index: int) -> tuple[list[Directive], int]:
        out: list[Directive] = []
        words: list[str] = []
        while index < len(tokens):
            token = tokens[index]
            index += 1
            if token == ";":
                out.append(Directive(words[0], words[1:]))
                words = []
            elif token == "{":
                children, index = block(index)
                out.append(Directive(words[0], words[1:], children))
                words = []
            elif token == "}":
                return out, index
            else:
                words.append(token[1:-1] if token[0] in "'\"" else token)
        assert not words, f"unterminated directive {words}"
        return out, index

    children, _ = block(0)
    return Directive("main", [], children)


@dataclass
class Location:
    modifier: str
    path: str
    directive: Directive


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return _nginx_parse((DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8"))


def _http(nginx: Directive) -> Directive:
    http = nginx.first("http")
    assert http is not None
    return http


def _server(nginx: Directive) -> Directive:
    servers = _http(nginx).all("server")
    assert len(servers) == 1
    return servers[0]


def _locations(nginx: Directive) -> list[Location]:
    out = []
    for directive in _server(nginx).all("location"):
        modifier, path = directive.args if len(directive.args) == 2 else ("", directive.args[0])
        out.append(Location(modifier, path, directive))
    return out


def _match(locations: list[Location], uri: str) -> Location | None:
    """nginx's choice: exact, then the longest prefix unless a regex (in order) matches."""
    for loc in locations:
        if loc.modifier == "=" and loc.path == uri:
            return loc
    prefixes = [loc for loc in locations if loc.modifier in ("", "^~") and uri.startswith(loc.path)]
    best = max(prefixes, key=lambda loc: len(loc.path), default=None)
    if best is not None and best.modifier == "^~":
        return best
    for loc in locations:
        if loc.modifier in ("~", "~*"):
            flags = re.IGNORECASE if loc.modifier == "~*" else 0
            if re.search(loc.path, uri, flags):
                return loc
    return best


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    suffix = value[-1].lower()
    return int(value[:-1]) * units[suffix] if suffix in units else int(value)


BATCH_URI = "/api/v1/demographics/batch"
# Document 001 §1.1: zone, burst, body limit (None: the server default), connect/send/read timeouts.
GATEWAY_ROUTES = {
    "/api/v1/face-recognition/": ("api_limit", 20, None, ("5s", "60s", "60s"), "face_recognition"),
    "/api/v1/antispoofing/": ("api_limit", 15, None, ("5s", "90s", "90s"), "antispoofing"),
    "/api/v1/deepfake-detection/": ("upload_limit", 5, "500M", ("10s", "300s", "300s"), "deepfake_detection"),
    "/api/v1/face-detection/": ("api_limit", 30, None, ("5s", "30s", "30s"), "face_detection"),
    "/api/v1/demographics/": ("api_limit", 25, None, ("5s", "20s", "20s"), "demographics"),
    BATCH_URI: ("upload_limit", 3, "200M", ("10s", "600s", "600s"), "batch"),
    # Job polling (not in the document, which has no jobs route): the api zone, the app's burst.
    "/api/v1/jobs": ("api_limit", 50, None, ("5s", "30s", "30s"), "jobs"),
    "/api/v1/jobs/": ("api_limit", 50, None, ("5s", "30s", "30s"), "jobs"),
    # Meeting attention (document 004): REST and the live socket; recordings are video uploads.
    "/api/v1/attention/": ("api_limit", 30, None, ("5s", "90s", "90s"), "attention"),
    "/api/v1/attention/videos": ("upload_limit", 5, "500M", ("10s", "300s", "300s"), "attention_videos"),
}


def test_nginx_zones_and_upstream(nginx: Directive, compose: dict[str, Any]) -> None:
    http = _http(nginx)
    zones = {}
    for zone in http.all("limit_req_zone"):
        assert zone.args[0] == "$binary_remote_addr", "limits are per client IP"
        opts = dict(arg.split("=", 1) for arg in zone.args[1:])
        zones[opts["zone"].split(":")[0]] = opts["rate"]
    assert zones == {"api_limit": "10r/s", "upload_limit": "2r/s"}
    assert http.first("limit_req_status").args == ["429"]  # type: ignore[union-attr]
    assert _size(http.first("client_max_body_size").args[0]) == _size("100M")  # type: ignore[union-attr]

    upstreams = {u.args[0]: u for u in http.all("upstream")}
    assert set(upstreams) == {"api"}
    servers = [s.args[0] for s in upstreams["api"].all("server")]
    assert servers
    for server in servers:
        host, _, port = server.partition(":")
        assert host in compose["services"] and port == "8000"


def test_nginx_routes_follow_document_and_settings(nginx: Directive) -> None:
    defaults = Settings.model_fields["rate_limits"].default.limits
    zone_rates = {"api_limit": 10, "upload_limit": 2}
    locations = _locations(nginx)
    for uri, (zone, burst, body, timeouts, limit_key) in GATEWAY_ROUTES.items():
        probe = uri + "anything" if uri.endswith("/") else uri
        loc = _match(locations, probe)
        assert loc is not None, uri
        if uri.endswith("/"):
            assert loc.path == uri, f"{probe} is served by {loc.path}"
        elif uri == BATCH_URI:
            assert loc.modifier in ("~", "~*"), f"{uri} must reach the batch location"
        else:
            assert (loc.modifier, loc.path) == ("=", uri), f"{uri} is served by {loc.path}"
        limit = loc.directive.first("limit_req")
        assert limit is not None
        assert limit.args == [f"zone={zone}", f"burst={burst}", "nodelay"], uri
        # The app's own per-caller defaults are the same numbers (settings._default_limits).
        assert defaults[limit_key].burst == burst
        assert defaults[limit_key].rate_per_second == zone_rates[zone]
        size = loc.directive.first("client_max_body_size")
        assert (size.args[0] if size else None) == body, uri
        got = tuple(
            (loc.directive.first(f"proxy_{kind}_timeout") or Directive("", ["?"])).args[0]
            for kind in ("connect", "send", "read")
        )
        assert got == timeouts, uri
    # The batch regex must not swallow ordinary calls.
    identify = _match(locations, "/api/v1/face-recognition/identify")
    assert identify is not None and identify.path == "/api/v1/face-recognition/"


def test_nginx_streams_videos_up_to_the_app_limit(nginx: Directive) -> None:
    """Video uploads: the gateway admits the app's largest video and does not buffer it."""
    video = _match(_locations(nginx), "/api/v1/deepfake-detection/analyze-video")
    assert video is not None and video.path == "/api/v1/deepfake-detection/"
    size = video.directive.first("client_max_body_size")
    assert size is not None and _size(size.args[0]) >= VideoLimits().max_video_bytes
    # Unbuffered: the API streams the body into the spool folder as it arrives (buffered, a
    # 500 MB body would first be written to the gateway's own disk, and only then sent on).
    buffering = video.directive.first("proxy_request_buffering")
    assert buffering is not None and buffering.args == ["off"]


def test_nginx_api_locations_name_real_routes(nginx: Directive, app_paths: set[str]) -> None:
    locations = _locations(nginx)
    api_locations = [loc for loc in locations if loc.path.startswith("/api/v1/") and loc.modifier == ""]
    assert api_locations
    for loc in api_locations:
        assert _served(loc.path, app_paths, prefix=True) or loc.path.rstrip("/") in FUTURE_PREFIXES, (
            f"location {loc.path} matches no route of the app and is not a documented future service"
        )
    for loc in locations:
        if loc.directive.first("proxy_pass"):
            # No URI part: the app receives the full /api/v1/<service>/... path.
            assert loc.directive.first("proxy_pass").args == ["http://api"], loc.path  # type: ignore[union-attr]
            assert loc.directive.first("proxy_set_header") is None, (
                f"{loc.path}: a proxy_set_header here would drop the server-level headers"
            )
    # Every route of the app is reachable through the gateway.
    for route in sorted(app_paths):
        if route.startswith(("/api/", "/health", "/metrics", "/console", "/rekognition")):
            uri = re.sub(r"\{[^}]+\}", "x", route)
            served = _match(locations, uri)
            assert served is not None and served.directive.first("proxy_pass") is not None, route
    # ... but index upkeep only from internal networks.
    admin = _match(locations, "/api/v1/admin/index/verify")
    assert admin is not None and admin.directive.block is not None
    access = [d for d in admin.directive.block if d.name in ("allow", "deny")]
    assert access[-1].name == "deny" and access[-1].args == ["all"]
    assert all(d.args[0] != "all" for d in access if d.name == "allow")


def test_nginx_upgrades_websockets_and_keeps_upstream_connections(nginx: Directive) -> None:
    """The liveness socket is upgraded; other requests keep Connection empty (keepalive pool)."""
    http, server = _http(nginx), _server(nginx)
    headers = {d.args[0].lower(): d.args[1] for d in server.all("proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    maps = [m for m in http.all("map") if m.args == ["$http_upgrade", "$connection_upgrade"]]
    assert len(maps) == 1 and maps[0].block is not None
    table = {d.name: d.args for d in maps[0].block}
    assert table["default"] == ["upgrade"] and table.get("") == [""], table
    socket = _match(_locations(nginx), "/api/v1/antispoofing/liveness/sessions/x/ws")
    assert socket is not None and socket.path == "/api/v1/antispoofing/"


def test_nginx_proxy_headers_metrics_and_error_envelope(nginx: Directive) -> None:
    server = _server(nginx)
    headers = {d.args[0].lower(): d.args[1] for d in server.all("proxy_set_header")}
    assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"
    assert headers["x-real-ip"] == "$remote_addr"
    assert "x-request-id" in headers

    metrics = _match(_locations(nginx), "/metrics")
    assert metrics is not None and metrics.modifier == "="
    allowed = [d.args[0] for d in metrics.directive.all("allow")]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(allowed)
    assert metrics.directive.block is not None
    access = [d for d in metrics.directive.block if d.name in ("allow", "deny")]
    assert access[-1].name == "deny" and access[-1].args == ["all"]

    pages = {code: d.args[-1] for d in server.all("error_page") for code in d.args[:-1]}
    locations = _locations(nginx)
    for status in (413, 429, 502, 503, 504):
        target = pages.get(str(status))
        assert target is not None, f"no error_page for {status}"
        loc = _match(locations, target)
        assert loc is not None and loc.modifier == "=" and loc.directive.first("internal") is not None
        assert loc.directive.first("default_type").args == ["application/json"]  # type: ignore[union-attr]
        returned = loc.directive.first("return")
        assert returned is not None and returned.args[0] == str(status)
        body = json.loads(returned.args[1])
        assert body["success"] is False and set(body["error"]) == {"code", "message"}
        assert all(isinstance(v, str) and v for v in body["error"].values())
        if status in api_errors._HTTP_CODES:
            assert body["error"]["code"] == api_errors._HTTP_CODES[status]


def test_nginx_config_test(tmp_path: Path) -> None:
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light): `nginx -t` not run")
    text = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    # Upstream hosts resolve only inside compose; paths are moved into tmp_path.
    text = re.sub(r"(?m)^(\s*server\s+)[\w.-]+:(\d+)", r"\g<1>127.0.0.1:\2", text)
    text = re.sub(r"(?m)^user\s+[^;]+;", "", text)
    text = text.replace("/var/log/nginx", str(tmp_path)).replace("/var/run/nginx.pid", str(tmp_path / "pid"))
    if not Path("/etc/nginx/mime.types").exists():
        text = text.replace("include /etc/nginx/mime.types;", "types { application/json json; }")
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp_path / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temp_paths, 1)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [binary, "-t", "-q", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- compose


def test_compose_services_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"gateway", "api", "migrate", "models", "maintenance", "postgres", "redis"}
    expected |= {"milvus", "etcd", "minio", "prometheus"}
    assert expected <= set(services)
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["postgres"]["image"].split(":")[1].startswith("16")
    assert services["redis"]["image"].split(":")[1].startswith("7")
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                check = services[target].get("healthcheck")
                assert check and not check.get("disable") and check.get("test"), (
                    f"{name} waits for {target} to be healthy, but {target} has no health check"
                )
            else:
                assert condition == "service_completed_successfully"
                assert services[target].get("restart") == "no", f"{target} is a one-off"
    api = services["api"]["depends_on"]
    assert api["models"]["condition"] == api["migrate"]["condition"] == "service_completed_successfully"
    for store in ("postgres", "redis", "milvus"):
        assert api[store]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(services["milvus"]["depends_on"]) == {"etcd", "minio"}
    assert "/health'" in " ".join(services["api"]["healthcheck"]["test"])


def test_compose_files_volumes_and_build(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    _, stages = _dockerfile()
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source, target, *mode = volume.split(":")
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
            if name in ("api", "worker", "maintenance") and target == "/models":
                assert mode == ["ro"], f"{name} must mount the models read-only"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile")
            assert build["target"] in {s.name for s in stages}
    assert "models:/models" in services["models"]["volumes"]
    assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in services["gateway"]["volumes"]


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """A compose service's volumes by target path: (source, options)."""
    out = {}
    for volume in service.get("volumes") or []:
        source, target, *mode = volume.split(":")
        out[target] = (source, mode)
    return out


def _runtime_owned_paths() -> set[str]:
    """Folders the runtime image creates and gives to its user (mkdir -p ... && chown ...)."""
    _, stages = _dockerfile()
    owned: set[str] = set()
    for stage in _chain(stages, "api"):
        for name, rest in stage.instructions:
            if name == "RUN":
                made = {w for m in re.findall(r"mkdir -p ([^&;]+)", rest) for w in m.split()}
                given = {w for m in re.findall(r"chown \S+ ([^&;]+)", rest) for w in m.split()}
                owned |= made & given
    return owned


def test_compose_worker_and_beat_run_the_api_image_and_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api = services["api"]
    for name, command in (("worker", "worker"), ("beat", "beat")):
        service = services[name]
        assert service["image"] == api["image"] and service["build"] == api["build"], name
        # Identical settings: the same database, stores, broker, callback secret and spool path.
        assert service["environment"] == api["environment"], name
        (invocation,) = _commands_in(service["command"])
        assert _check_cli(invocation) == command
        # The image's own health check asks for the API's port: each must bring its own.
        check = service["healthcheck"]
        assert not check.get("disable") and "8000" not in " ".join(check["test"]), name
        assert service["restart"] == "unless-stopped"
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert _option(services["worker"]["command"], "--concurrency") is not None
    assert services["worker"]["depends_on"]["models"]["condition"] == "service_completed_successfully"
    assert services["worker"]["deploy"]["replicas"] >= 1
    # Two beats would send every scheduled task twice.
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_compose_spool_volume_is_shared_by_api_and_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    spool = _compose_env(services["api"])["FACESOCIAL_JOBS__SPOOL_DIR"]
    sources = set()
    for name in ("api", "worker"):
        mounts = _mounts(services[name])
        assert spool in mounts, f"{name} does not mount the spool folder {spool}"
        source, mode = mounts[spool]
        assert mode in ([], ["rw"]), f"{name} must write to the spool"
        assert not source.startswith((".", "/")), f"{name}: the spool must be a named volume"
        sources.add(source)
    assert len(sources) == 1, f"api and worker mount different spool volumes {sources}"
    assert sources <= set(compose["volumes"])
    # An empty named volume takes the owner of the image's folder: the image must create it
    # for its (non-root) user, or the API could not write uploads there.
    assert spool in _runtime_owned_paths()
    assert {"/data", "/models"} <= _runtime_owned_paths()


# --------------------------------------------------------------------------- Kubernetes


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = _load(K8S / "kustomization.yaml")
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == {n for n in on_disk if not n.endswith(".example.yaml")}
    assert kustomization["namespace"] == NAMESPACE


def test_kubernetes_namespaces_and_references(k8s: list[dict[str, Any]]) -> None:
    assert _one(k8s, "Namespace")["metadata"]["name"] == NAMESPACE
    for resource in k8s:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == NAMESPACE, resource["_file"]
    names = Counter((r["kind"], r["metadata"]["name"]) for r in k8s)
    assert max(names.values()) == 1
    configmaps = {r["metadata"]["name"] for r in k8s if r["kind"] == "ConfigMap"}
    secrets = {r["metadata"]["name"] for r in k8s if r["kind"] == "Secret"}
    claims = {r["metadata"]["name"] for r in k8s if r["kind"] == "PersistentVolumeClaim"}
    accounts = {r["metadata"]["name"] for r in k8s if r["kind"] == "ServiceAccount"}
    for resource in (r for r in k8s if r["kind"] in WORKLOAD_KINDS):
        pod = _pod_spec(resource)
        where = f"{resource['kind']}/{resource['metadata']['name']}"
        assert pod["serviceAccountName"] in accounts, where
        assert pod["automountServiceAccountToken"] is False, where
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, where
        assert security["seccompProfile"]["type"] == "RuntimeDefault", where
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert {"requests", "limits"} <= set(container["resources"]), where
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, where
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, where
            for mount in container.get("volumeMounts", []):
                if mount["mountPath"] == "/models" and resource["metadata"]["name"] != "facesocial-models":
                    assert mount.get("readOnly") is True, f"{where} must mount the models read-only"


def test_kubernetes_api_deployment_probes_and_service(k8s: list[dict[str, Any]], app_paths: set[str]) -> None:
    deployment = _one(k8s, "Deployment", "api")
    assert deployment["spec"]["replicas"] == 2
    labels = _pod_labels(deployment)
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = _pod_spec(deployment)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in app_paths, f"{probe} path {get['path']} is not a route of the app"
        assert get["port"] in ports or get["port"] in ports.values()

    service = _one(k8s, "Service", "api")
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in ports and port["port"] == 8000

    hpa = _one(k8s, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = _one(k8s, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _quantity(value: str | int) -> float:
    """A Kubernetes quantity ("500m", "2", "3Gi", "1536Mi") as a number of cores or bytes."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match is not None and match.group(2) in {"", *units}, value
    return float(match.group(1)) * units.get(match.group(2), 1)


def _only_container(resource: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _pod_spec(resource)["containers"]
    assert len(containers) == 1, resource["metadata"]["name"]
    return containers[0]


def _mounted_claims(resource: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """A workload's PersistentVolumeClaims by mount path: (claim name, read-only)."""
    pod = _pod_spec(resource)
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in pod["volumes"]
        if "persistentVolumeClaim" in volume
    }
    return {
        m["mountPath"]: (claims[m["name"]], bool(m.get("readOnly")))
        for m in _only_container(resource).get("volumeMounts", [])
        if m["name"] in claims
    }


def test_kubernetes_worker_and_beat_run_the_api_image_and_settings(k8s: list[dict[str, Any]]) -> None:
    api = _only_container(_one(k8s, "Deployment", "api"))
    for name in ("worker", "beat"):
        deployment = _one(k8s, "Deployment", name)
        assert deployment["spec"]["selector"]["matchLabels"].items() <= _pod_labels(deployment).items()
        container = _only_container(deployment)
        assert container["image"] == api["image"], name
        # The same ConfigMap and Secret, and no variable of its own that the API lacks.
        assert container["envFrom"] == api["envFrom"], name
        own = {e["name"] for e in container.get("env", [])}
        assert own <= {e["name"] for e in api.get("env", [])}, f"{name} sets {own} apart from the API"
        assert _check_cli(container["command"][1:]) == name and container["command"][0] == "facesocial"
        assert "ports" not in container, f"{name} serves nothing"

    worker = _one(k8s, "Deployment", "worker")
    assert worker["spec"]["replicas"] >= 1
    assert _option(_only_container(worker)["command"], "--concurrency") is not None
    # Sized for one video analysis (up to 2 CPUs, 3 GiB), and given time to finish it on SIGTERM.
    limits = _only_container(worker)["resources"]["limits"]
    assert _quantity(limits["cpu"]) >= 2 and _quantity(limits["memory"]) >= 3 * 2**30
    assert _pod_spec(worker)["terminationGracePeriodSeconds"] >= 60
    # The models like the API's: the same claim, read-only, waited for.
    api_claims = _mounted_claims(_one(k8s, "Deployment", "api"))
    assert _mounted_claims(worker)["/models"] == api_claims["/models"] == ("facesocial-models", True)
    assert [c["name"] for c in _pod_spec(worker)["initContainers"]] == ["wait-for-models"]

    beat = _one(k8s, "Deployment", "beat")
    # Two beats would send every scheduled task twice, also for a moment during a rollout.
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in k8s if h["kind"] == "HorizontalPodAutoscaler"}
    assert "beat" not in scaled


def test_kubernetes_spool_claim_is_shared_by_api_and_worker(k8s: list[dict[str, Any]]) -> None:
    spool = _one(k8s, "ConfigMap")["data"]["FACESOCIAL_JOBS__SPOOL_DIR"]
    mounted = {name: _mounted_claims(_one(k8s, "Deployment", name)).get(spool) for name in ("api", "worker")}
    assert mounted["api"] is not None and mounted["api"] == mounted["worker"], mounted
    claim_name, read_only = mounted["api"]
    assert not read_only, "the API writes uploads into the spool, the worker removes them"
    claim = _one(k8s, "PersistentVolumeClaim", claim_name)
    # Pods on different nodes share it.
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert _quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2 * VideoLimits().max_video_bytes
    # The callback master secret and the broker URL (it holds the Redis password) are secrets.
    secret = _one(k8s, "Secret")["stringData"]
    assert {"FACESOCIAL_JOBS__BROKER_URL", "FACESOCIAL_JOBS__CALLBACK_SECRET"} <= set(secret)


def test_kubernetes_ingress_paths_name_real_routes(k8s: list[dict[str, Any]], app_paths: set[str]) -> None:
    service = _one(k8s, "Service", "api")
    port_names = {p["name"] for p in service["spec"]["ports"]}
    ingresses = [r for r in k8s if r["kind"] == "Ingress"]
    assert ingresses
    seen = set()
    for ingress in ingresses:
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert "nginx.ingress.kubernetes.io/proxy-body-size" in ingress["metadata"]["annotations"]
        for rule in ingress["spec"]["rules"]:
            for item in rule["http"]["paths"]:
                path = item["path"]
                seen.add(path)
                backend = item["backend"]["service"]
                assert backend["name"] == "api" and backend["port"]["name"] in port_names
                served = _served(path, app_paths, prefix=item["pathType"] == "Prefix")
                assert served or path in FUTURE_PREFIXES, f"ingress path {path} is no route of the app"
    assert "/metrics" not in seen
    assert {"/console", "/rekognition"} <= seen, "the console and the Rekognition endpoint are exposed"
    for route in (r for r in app_paths if r.startswith("/api/v1/")):
        exposed = any(route == p or route.startswith(p.rstrip("/") + "/") for p in seen)
        # Index upkeep stays inside the cluster (kubectl port-forward / exec), like /metrics.
        assert exposed != route.startswith("/api/v1/admin/"), f"{route}: exposed={exposed}"


def test_kubernetes_jobs_network_policy_and_rbac(k8s: list[dict[str, Any]]) -> None:
    cron = _one(k8s, "CronJob")
    minute, hour, day, month, weekday = cron["spec"]["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*"), "daily"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    models_job = _one(k8s, "Job", "facesocial-models")
    assert _pod_spec(models_job)["containers"][0]["image"].startswith("facesocial/facesocial-models")

    policies = [r for r in k8s if r["kind"] == "NetworkPolicy"]
    for workload in (r for r in k8s if r["kind"] in WORKLOAD_KINDS):
        labels = _pod_labels(workload)
        assert any(_selects(p["spec"]["podSelector"], labels) for p in policies), (
            f"no NetworkPolicy selects {workload['kind']}/{workload['metadata']['name']}"
        )
    api_labels = _pod_labels(_one(k8s, "Deployment", "api"))
    (api_policy,) = [p for p in policies if _selects(p["spec"]["podSelector"], api_labels)]
    sources = json.dumps(api_policy["spec"]["ingress"])
    assert "ingress-nginx" in sources and "prometheus" in sources
    assert {p["port"] for rule in api_policy["spec"]["ingress"] for p in rule["ports"]} == {8000}
    egress_ports = {p["port"] for rule in api_policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 5432, 6379, 19530} <= egress_ports
    # Cancelling a job in the API ends it there, and its callback is sent from there.
    assert _callback_egress(api_policy)

    role = _one(k8s, "Role")
    for rule in role.get("rules") or []:
        assert "*" not in rule["verbs"] + rule["resources"] + rule.get("apiGroups", [])
        assert set(rule["verbs"]) <= {"get", "list", "watch"} and "secrets" not in rule["resources"]
    binding = _one(k8s, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = _one(k8s, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    assert account["automountServiceAccountToken"] is False


PRIVATE_V4 = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"}


def _callback_egress(policy: dict[str, Any]) -> bool:
    """Whether a policy lets pods POST job callbacks: HTTP(S) to public IPv4 addresses only."""
    for rule in policy["spec"].get("egress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        blocks = [peer["ipBlock"] for peer in rule.get("to", []) if "ipBlock" in peer]
        v4 = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
        if ports == {80, 443} and v4:
            # The app refuses private callback hosts; the network refuses them too.
            assert set(v4[0].get("except", [])) >= PRIVATE_V4, policy["metadata"]["name"]
            return True
    return False


def test_kubernetes_worker_and_beat_network_policies(k8s: list[dict[str, Any]]) -> None:
    policies = [r for r in k8s if r["kind"] == "NetworkPolicy"]

    def policy_of(name: str) -> dict[str, Any]:
        labels = _pod_labels(_one(k8s, "Deployment", name))
        (policy,) = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["ingress"] == []
        return policy

    def ports(policy: dict[str, Any]) -> set[int]:
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}

    worker = policy_of("worker")
    # DNS, PostgreSQL, Redis (store and broker), Milvus, and the clients' callback URLs.
    assert {53, 5432, 6379, 19530, 80, 443} <= ports(worker)
    assert _callback_egress(worker)
    # Beat only puts tasks on the broker.
    assert ports(policy_of("beat")) == {53, 6379}


# --------------------------------------------------------------------------- Prometheus


def _exported_metrics() -> dict[str, set[str]]:
    """Every sample name the app exports, with its label names."""
    names: dict[str, set[str]] = {}
    for collector in vars(app_metrics).values():
        if isinstance(collector, MetricWrapperBase):
            labels = set(collector._labelnames)
            for family in collector.describe():
                suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum")}
                for suffix in suffixes.get(family.type, ("",)):
                    names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
PROMQL_KEYWORDS |= {"unless", "offset"}
TARGET_LABELS = {"job", "instance", "pod"}


def _promql_metrics(expr: str) -> dict[str, set[str]]:
    """Metric names in a PromQL expression, each with the label names it matches on."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?", expr):
        name, matchers = match.groups()
        before = expr[: match.start()]
        after = expr[match.end() :].lstrip()
        if after.startswith("(") or re.match(r"(by|without)\s*\(", after) or name in PROMQL_KEYWORDS:
            continue  # a function, an aggregation or a keyword
        if before.rstrip().endswith(("{", ",")):
            continue
        if re.search(r"(by|without|on|ignoring)\s*\([^)]*$", before) or re.search(r"\[[^\]]*$", before):
            continue  # a grouping label or a range duration
        labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""))
        found.setdefault(name, set()).update(labels)
    return found


def _alert_exprs() -> list[str]:
    (rules,) = _load(DEPLOY / "monitoring" / "alerts.yml")
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    exprs = []
    for path in sorted((DEPLOY / "monitoring").rglob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        exprs += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return exprs


def test_promql_metric_extraction() -> None:
    got = _promql_metrics('sum by (le) (rate(x_bucket{job="a", status=~"5.."}[5m])) / up == 0')
    assert got == {"x_bucket": {"job", "status"}, "up": set()}


def test_alerts_and_dashboard_use_exported_metrics() -> None:
    exported = _exported_metrics()
    used: set[str] = set()
    for expr in _alert_exprs() + _dashboard_exprs():
        for name, labels in _promql_metrics(expr).items():
            if name == "up":
                assert labels <= TARGET_LABELS
                continue
            assert name in exported, f"{name} is not exported by facesocial.metrics ({expr})"
            assert labels <= exported[name] | TARGET_LABELS, f"{name} has no label {labels - exported[name]}"
            used.add(name)
    for family in ("http_requests_total", "http_request_duration_seconds_bucket"):
        assert family in used
    assert "ai_model_inference_duration_seconds_bucket" in used
    assert any('status=~"5.."' in e for e in _alert_exprs())


def test_prometheus_scrapes_the_api_services(compose: dict[str, Any], k8s: list[dict[str, Any]]) -> None:
    (config,) = _load(DEPLOY / "monitoring" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api_job = jobs["facesocial-api"]
    assert api_job.get("metrics_path", "/metrics") == "/metrics"
    hosts = {(name, sd.get("port")) for sd in api_job.get("dns_sd_configs", []) for name in sd["names"]} | {
        tuple(t.rsplit(":", 1)) for sc in api_job.get("static_configs", []) for t in sc["targets"]
    }
    assert hosts and all(host in compose["services"] and int(port) == 8000 for host, port in hosts)
    assert ("api", 8000) in {(h, int(p)) for h, p in hosts}
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "monitoring" / rule_file).exists()
        mounts = compose["services"]["prometheus"]["volumes"]
        assert f"./monitoring/{rule_file}:/etc/prometheus/{rule_file}:ro" in mounts
    # Alerts select the job by the name it is scraped under.
    for expr in _alert_exprs():
        for job in re.findall(r'job="([^"]+)"', expr):
            assert job in jobs

    (k8s_config,) = _load(DEPLOY / "monitoring" / "prometheus-kubernetes.yml")
    (k8s_job,) = [j for j in k8s_config["scrape_configs"] if j["job_name"] == "facesocial-api"]
    (sd,) = k8s_job["kubernetes_sd_configs"]
    assert sd["namespaces"]["names"] == [NAMESPACE]
    keep = {
        r["source_labels"][0]: r["regex"] for r in k8s_job["relabel_configs"] if r.get("action") == "keep"
    }
    service = _one(k8s, "Service", keep["__meta_kubernetes_service_name"])
    assert keep["__meta_kubernetes_endpoint_port_name"] in {p["name"] for p in service["spec"]["ports"]}


def test_promtool_checks() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus): rules not compiled")
    monitoring = DEPLOY / "monitoring"
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run([promtool, *args], cwd=monitoring, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- secrets


def _is_placeholder(value: str) -> bool:
    value = value.strip()
    return (
        value == "" or PLACEHOLDER in value or re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}", value) is not None
    )


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def test_no_real_secrets(compose: dict[str, Any], k8s: list[dict[str, Any]]) -> None:
    # compose: secret-like values come from deploy/.env, with no default.
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert _is_placeholder(str(value)), f"{name}.{key} must come from deploy/.env"
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for var in re.findall(r"\$\{([A-Z0-9_]+):-", text):
        assert not SECRET_NAME.search(var), f"${{{var}}} must not have a default"
    for path in _text_files():
        for password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", path.read_text(encoding="utf-8")):
            assert _is_placeholder(password), f"{path.name}: a password in a URL"

    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        key, _, value = line.partition("=")
        if not line.startswith("#") and SECRET_NAME.search(key):
            assert PLACEHOLDER in value, f".env.example: {key} must be a placeholder"
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and "kubernetes/secret.yaml" in ignored

    secret = _one(k8s, "Secret")
    assert "data" not in secret, "use stringData placeholders, never base64 values"
    assert "FACESOCIAL_AUTH__JWT_SECRET" in secret["stringData"]
    for key, value in secret["stringData"].items():
        assert _is_placeholder(value) or PLACEHOLDER in value, f"Secret {key} must be a placeholder"
    for key in _one(k8s, "ConfigMap")["data"]:
        assert not SECRET_NAME.search(key), f"{key} belongs in the Secret"
    _, stages = _dockerfile()
    assert not any(SECRET_NAME.search(key) for key in _dockerfile_env(stages[-1:]))

    # Nothing that looks like a key, a token or a long random string anywhere in deploy/.
    for path in _text_files():
        content = path.read_text(encoding="utf-8")
        assert "-----BEGIN" not in content and not re.search(r"eyJ[\w-]{10,}\.", content), path.name
        for word in re.findall(r"[A-Za-z0-9+/_=-]{32,}", content):
            if PLACEHOLDER not in word and not word.startswith(("http", "/")):
                assert _entropy(word) < 4.5, f"{path.name}: {word[:8]}... looks like a secret"


def test_every_yaml_file_parses() -> None:
    files = _yaml_files()
    assert len(files) >= 15
    for path in files:
        assert _load(path), f"{path} holds no document"
