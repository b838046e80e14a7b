"""AccountService on a real SQLite database; the installation's JWT secret; login token claims."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from facesocial import errors
from facesocial.services.accounts import AccountService
from facesocial.services.keys import ApiKeyService
from facesocial.services.tokens import JWT_KEY_FILE, TokenService, installation_secret
from facesocial.settings import AuthSettings
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables import Account

PASSWORD = "a long enough passphrase"
SECRET = "unit-test-secret-of-at-least-32-chars"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'accounts.db'}")
    migrate.upgrade(db)
    return db


def service(database: Database, **cost: int) -> AccountService:
    settings = AuthSettings(**cost)  # type: ignore[arg-type]
    return AccountService(database, ApiKeyService(database), TokenService(SECRET), settings)


def stored_hash(database: Database, account_id: uuid.UUID) -> str:
    with database.session(readonly=True) as session:
        value = session.scalar(select(Account.password_hash).where(Account.account_id == account_id))
    assert value is not None
    return value


def test_password_is_rehashed_at_login_when_the_cost_changes(database: Database) -> None:
    cheap = service(database, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)
    account = cheap.register("Rehash", "rehash@example.org", PASSWORD)
    first = stored_hash(database, account.account_id)
    assert first.startswith("$argon2id$") and "m=8192,t=1,p=1" in first
    cheap.login("rehash", PASSWORD)
    assert stored_hash(database, account.account_id) == first  # same cost: left alone
    dearer = service(database, argon2_time_cost=2, argon2_memory_kib=16384, argon2_parallelism=2)
    dearer.login("REHASH@example.org", PASSWORD)
    second = stored_hash(database, account.account_id)
    assert "m=16384,t=2,p=2" in second and second != first
    assert PasswordHasher().verify(second, PASSWORD)
    with pytest.raises(errors.InvalidCredentialsError):
        dearer.login("rehash", PASSWORD + "?")
    assert stored_hash(database, account.account_id) == second  # a failed login changes nothing


@pytest.mark.parametrize(
    ("username", "email", "password", "error"),
    [
        ("abc", "abc@example.org", "123456789", errors.WeakPasswordError),
        ("abcdefghijk", "x@example.org", "AbCdEfGhIjK", errors.WeakPasswordError),
        ("someone", "Mail.Box@Example.org", "mail.box@example.org", errors.WeakPasswordError),
        ("someone", "mailboxname@example.org", "MAILBOXNAME", errors.WeakPasswordError),
        ("someone", "x@example.org", "p" * 1025, errors.WeakPasswordError),
        ("so", "x@example.org", PASSWORD, errors.ValidationFailedError),
        ("some/one", "x@example.org", PASSWORD, errors.ValidationFailedError),
        ("someone", "x@@example.org", PASSWORD, errors.ValidationFailedError),
        ("someone", "x@example", PASSWORD, errors.ValidationFailedError),
        ("someone", "x y@example.org", PASSWORD, errors.ValidationFailedError),
    ],
)
def test_registration_rules(
    database: Database, username: str, email: str, password: str, error: type[errors.FaceSocialError]
) -> None:
    with pytest.raises(error):
        service(database, argon2_memory_kib=8192).register(username, email, password)


def test_email_and_username_are_normalised(database: Database) -> None:
    accounts = service(database, argon2_memory_kib=8192)
    account = accounts.register("  Mixed.Case-1 ", " Mixed@Example.ORG ", PASSWORD, first_name="")
    assert (account.username, account.email, account.first_name) == (
        "Mixed.Case-1",
        "mixed@example.org",
        None,
    )
    with pytest.raises(errors.AccountExistsError):
        accounts.register("MIXED.case-1", "other@example.org", PASSWORD)
    with pytest.raises(errors.AccountExistsError):
        accounts.register("other", "MIXED@example.org", PASSWORD)


def test_login_token_names_the_account_and_is_cut_when_suspended(database: Database) -> None:
    accounts = service(database, argon2_memory_kib=8192)
    account = accounts.register("tokenuser", "token@example.org", PASSWORD)
    result = accounts.login("tokenuser", PASSWORD)
    caller = TokenService(SECRET).verify(f"Bearer {result.access_token}", require_account=True)
    assert caller.account_id == caller.tenant_id == account.account_id and caller.role == "user"
    assert caller.name == f"account:{account.account_id}"
    accounts.require_active(account.account_id)
    with database.session() as session:
        session.execute(
            update(Account).where(Account.account_id == account.account_id).values(account_status="suspended")
        )
    with pytest.raises(errors.AccountDisabledError):
        accounts.require_active(account.account_id)
    with pytest.raises(errors.InvalidTokenError):
        accounts.require_active(uuid.uuid4())


def test_keys_of_an_account_stop_with_it(database: Database) -> None:
    accounts = service(database, argon2_memory_kib=8192)
    account = accounts.register("keyowner", "keys@example.org", PASSWORD)
    issued = accounts.create_key(account.account_id, "k", request_limit=5)
    keys = ApiKeyService(database)
    caller = keys.authenticate(issued.secret)
    assert caller.account_id == caller.tenant_id == account.account_id and caller.role == "user"
    with database.session() as session:
        session.execute(
            update(Account).where(Account.account_id == account.account_id).values(account_status="deleted")
        )
    with pytest.raises(errors.AccountDisabledError):
        keys.authenticate(issued.secret)
    with database.session() as session:  # erasing the account erases its keys (ON DELETE CASCADE)
        session.delete(session.get(Account, account.account_id))
    with pytest.raises(errors.InvalidApiKeyError):
        keys.authenticate(issued.secret)


def test_an_account_holds_a_bounded_number_of_keys(database: Database) -> None:
    accounts = service(database, argon2_memory_kib=8192, max_keys_per_account=2, max_key_request_limit=5000)
    account = accounts.register("collector", "collector@example.org", PASSWORD)
    first = accounts.create_key(account.account_id, "a", request_limit=5000)
    accounts.create_key(account.account_id, "b")
    with pytest.raises(errors.TooManyApiKeysError):
        accounts.create_key(account.account_id, "c")
    accounts.revoke_key(account.account_id, first.id)
    assert accounts.create_key(account.account_id, "c").name == "c"
    with pytest.raises(errors.ApiKeyNotFoundError):
        accounts.revoke_key(uuid.uuid4(), first.id)


def test_token_account_claim_must_match_the_subject() -> None:
    tokens = TokenService(SECRET)
    subject = uuid.uuid4()
    with pytest.raises(errors.InvalidTokenError):
        tokens.verify(f"Bearer {tokens.issue(subject, 'user', account_id=uuid.uuid4())}")
    with pytest.raises(errors.InvalidTokenError):
        tokens.verify(f"Bearer {tokens.issue(subject, 'user')}", require_account=True)
    assert tokens.verify(f"Bearer {tokens.issue(subject, 'admin')}").account_id is None


_START = """
import sys, time
from pathlib import Path
from facesocial.services.tokens import installation_secret
deadline = float(sys.argv[2])
while time.time() < deadline:
    pass
print(installation_secret(Path(sys.argv[1])))
"""


def test_installation_secret_is_made_once_even_by_processes_starting_together(tmp_path: Path) -> None:
    import time

    folder = tmp_path / "secrets"
    start_at = str(time.time() + 2.0)  # every process is spinning by then; they call at once
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _START, str(folder), start_at], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=60)[0].strip() for process in processes]
    assert all(process.returncode == 0 for process in processes)
    assert len(set(outputs)) == 1 and len(outputs[0]) == 64
    path = folder / JWT_KEY_FILE
    assert path.read_text().strip() == outputs[0] == installation_secret(folder)
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [JWT_KEY_FILE]  # no candidate left behind
