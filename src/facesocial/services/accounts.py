"""Accounts (document 003's ``users``): registration, password login, the account's own API keys.

Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher``; cost from ``auth.*``) and
rehashed at the next login when the cost settings change. A login for an unknown username runs
one verification against a dummy hash of the same cost, so it takes as long and answers the
same INVALID_CREDENTIALS as a wrong password.

Every account is its own tenant: its login tokens carry ``user_id = account_id`` and its keys
``owner_id = account_id``, so ``Principal.tenant_id`` scopes its data like any other caller's.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.keys import ApiKeyService, IssuedKey
from facesocial.services.tokens import TokenService
from facesocial.settings import AuthSettings
from facesocial.store.db import Database
from facesocial.store.tables import ACCOUNT_ACTIVE, ACCOUNT_DELETED, Account, ApiKey
from facesocial.store.types import utcnow

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,50}$"
_USERNAME = re.compile(USERNAME_PATTERN)
# Minimal on purpose: one @, no spaces, a dot in the domain. Deliverability is the mail
# server's to judge; this only keeps obvious non-addresses out of a unique column.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; this bounds the bytes a request can make it read
MAX_NAME_LENGTH = 50
MAX_EMAIL_LENGTH = 100
MAX_KEY_NAME_LENGTH = 100
# Characters no account field may hold (docs/api.md: free text refuses control and invisible
# characters): control characters (Cc; PostgreSQL refuses NUL in text outright, a DataError
# that was a 500), lone surrogates (Cs, which no UTF-8 column stores) and format characters
# (Cf: invisible, or changing how the text is shown, as the right-to-left override U+202E).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# ... but names keep the zero-width non-joiner and joiner (Cf): Persian and Indic names and
# emoji sequences are spelt with them.
_NAME_JOINERS = frozenset({"\u200c", "\u200d"})


@dataclass(frozen=True, slots=True)
class AccountView:
    """What an account may see of itself: never the password hash."""

    account_id: uuid.UUID
    username: str
    email: str
    first_name: str | None
    last_name: str | None
    account_status: str
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None
    profile_image_url: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": str(self.account_id),
            "username": self.username,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "account_status": self.account_status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "last_login": self.last_login.isoformat() if self.last_login else None,
            "profile_image_url": self.profile_image_url,
        }


@dataclass(frozen=True, slots=True)
class LoginResult:
    account: AccountView
    access_token: str
    expires_in: int  # seconds


class AccountService:
    def __init__(
        self, database: Database, keys: ApiKeyService, tokens: TokenService, settings: AuthSettings
    ) -> None:
        self._db = database
        self._keys = keys
        self._tokens = tokens
        self._settings = settings
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Each hash holds argon2_memory_kib of memory while it runs: bound how many run at once
        # so a burst of logins cannot take the server's memory (the rest wait their turn).
        self._hashing = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))

    @cached_property
    def _dummy_hash(self) -> str:
        """A hash of a random password with the current cost, verified for unknown usernames."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    # --- registration and login ---------------------------------------------------------------------

    def register(
        self,
        username: str,
        email: str,
        password: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> AccountView:
        """A new active account.

        Raises ValidationFailedError (username not 3-50 of ``[A-Za-z0-9_.-]``, email not
        ``x@y.z`` or over 100 characters, a name over 50, control or format characters, Unicode
        Cc/Cf/Cs, in the email or a name, a lone surrogate in the password), WeakPasswordError (under 10
        characters, over 1024, or equal to the username or email, case-insensitively), and
        AccountExistsError (the username, compared case-insensitively, or the email is taken;
        the message does not say which).
        """
        username = username.strip()
        email = email.strip().lower()
        _check_text("email", email)
        if not _USERNAME.fullmatch(username):
            raise errors.ValidationFailedError(
                "username must be 3 to 50 letters, digits, '_', '.' or '-'", fields=["username"]
            )
        if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
            raise errors.ValidationFailedError(
                f"email must be an address like name@example.org (at most {MAX_EMAIL_LENGTH} characters)",
                fields=["email"],
            )
        for field, value in (("first_name", first_name), ("last_name", last_name)):
            if value is not None and len(value) > MAX_NAME_LENGTH:
                raise errors.ValidationFailedError(
                    f"{field} must be at most {MAX_NAME_LENGTH} characters", fields=[field]
                )
            if value is not None:
                _check_text(field, value, allowed=_NAME_JOINERS)
        _check_password(password, username, email)
        key = username.lower()
        with self._db.session(readonly=True) as session:
            if self._taken(session, key, email):
                raise errors.AccountExistsError()
        password_hash = self._hash(password)  # outside any transaction: 0.1-0.2 s of CPU
        row = Account(
            username=username,
            username_key=key,
            email=email,
            password_hash=password_hash,
            first_name=first_name or None,
            last_name=last_name or None,
            account_status=ACCOUNT_ACTIVE,
        )
        try:
            with self._db.session() as session:
                session.add(row)
                session.flush()
                return _view(row)
        except IntegrityError:
            # Another registration of the same name or email committed between check and insert.
            raise errors.AccountExistsError() from None

    def login(self, identifier: str, password: str) -> LoginResult:
        """Check a username (any case) or email and a password; a bearer token for the account.

        Raises InvalidCredentialsError (unknown or deleted account, or wrong password: one code,
        one message, about the same time) and AccountDisabledError (a suspended account whose
        password was right; told only to who knows the password).
        """
        identifier = identifier.strip().lower()
        if _hidden_character(identifier) is not None:
            # No account is named so (registration refuses them), and PostgreSQL would raise on
            # a NUL: the answer of any unknown name, after as long.
            self._verify(self._dummy_hash, password)
            raise errors.InvalidCredentialsError()
        column = Account.email if "@" in identifier else Account.username_key
        with self._db.session(readonly=True) as session:
            row = session.scalar(select(Account).where(column == identifier))
            found = None if row is None else (row.account_id, row.password_hash, row.account_status)
        if found is None or found[2] == ACCOUNT_DELETED:
            self._verify(self._dummy_hash, password)
            raise errors.InvalidCredentialsError()
        account_id, password_hash, status = found
        if not self._verify(password_hash, password):
            raise errors.InvalidCredentialsError()
        if status != ACCOUNT_ACTIVE:
            raise errors.AccountDisabledError()
        new_hash = self._hash(password) if self._hasher.check_needs_rehash(password_hash) else None
        now = utcnow()
        with self._db.session() as session:
            account = session.get(Account, account_id)
            if account is None:  # erased between the two transactions
                raise errors.InvalidCredentialsError()
            account.last_login = now
            if new_hash is not None:
                account.password_hash = new_hash
            view = _view(account)
        ttl = self._settings.access_token_ttl_seconds
        token = self._tokens.issue(account_id, "user", ttl, account_id=account_id)
        return LoginResult(account=view, access_token=token, expires_in=ttl)

    # --- the account as a caller ----------------------------------------------------------------------

    def get(self, account_id: uuid.UUID) -> AccountView:
        """The account; AccountDisabledError when it is not active, InvalidTokenError when gone."""
        with self._db.session(readonly=True) as session:
            row = session.get(Account, account_id)
            if row is None:
                raise errors.InvalidTokenError("The token's account does not exist")
            if row.account_status != ACCOUNT_ACTIVE:
                raise errors.AccountDisabledError()
            return _view(row)

    def require_active(self, account_id: uuid.UUID) -> None:
        """Raise unless the account exists and is active (checked on every token use)."""
        with self._db.session(readonly=True) as session:
            status = session.scalar(select(Account.account_status).where(Account.account_id == account_id))
        if status is None:
            raise errors.InvalidTokenError("The token's account does not exist")
        if status != ACCOUNT_ACTIVE:
            raise errors.AccountDisabledError()

    # --- the account's API keys -------------------------------------------------------------------------

    def create_key(
        self,
        account_id: uuid.UUID,
        name: str,
        *,
        request_limit: int | None = None,
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        """A key of the account (role ``user``, its tenant): the secret is in the result only.

        ``request_limit`` defaults to document 003's 1000 and may not exceed
        ``auth.max_key_request_limit``; ``expires_at`` must be timezone-aware and in the future.
        Raises ValidationFailedError (also for control or format characters in ``name``),
        TooManyApiKeysError (``auth.max_keys_per_account`` active, counted in the insert's own
        transaction: concurrent creations cannot pass the limit), InvalidTokenError (the account
        is gone).
        """
        name = name.strip()
        if not name or len(name) > MAX_KEY_NAME_LENGTH:
            raise errors.ValidationFailedError(
                f"name must be 1 to {MAX_KEY_NAME_LENGTH} characters", fields=["name"]
            )
        _check_text("name", name, allowed=_NAME_JOINERS)
        ceiling = self._settings.max_key_request_limit
        limit = min(1000, ceiling) if request_limit is None else request_limit
        if not 1 <= limit <= ceiling:
            raise errors.ValidationFailedError(
                f"request_limit must be between 1 and {ceiling}", fields=["request_limit"]
            )
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise errors.ValidationFailedError(
                    "expires_at needs a timezone (e.g. 2027-01-31T00:00:00Z)", fields=["expires_at"]
                )
            expires_at = expires_at.astimezone(UTC)
            if expires_at <= utcnow():
                raise errors.ValidationFailedError("expires_at must be in the future", fields=["expires_at"])
        most = self._settings.max_keys_per_account

        def within_limit(session: Session) -> None:
            # Counted in a transaction of its own, the limit was raced: 30 creations at once made
            # 29 keys (limit 20). Now the count runs in the insert's transaction with one writer
            # per account: PostgreSQL locks the account's row until commit (FOR UPDATE; under READ
            # COMMITTED the next holder's count sees the keys committed before it), SQLite's write
            # transactions are one at a time already (BEGIN IMMEDIATE, store/db.py).
            owner = session.scalar(
                select(Account.account_id).where(Account.account_id == account_id).with_for_update()
            )
            if owner is None:
                raise errors.InvalidTokenError("The token's account does not exist")
            active = int(
                session.scalar(
                    select(func.count())
                    .select_from(ApiKey)
                    .where(ApiKey.account_id == account_id, ApiKey.is_active.is_(True))
                )
                or 0
            )
            if active >= most:
                raise errors.TooManyApiKeysError(
                    f"The account already holds {active} active API keys (the most allowed); delete one first"
                )

        return self._keys.create(
            name,
            role="user",
            request_limit=limit,
            expires_at=expires_at,
            owner_id=account_id,
            account_id=account_id,
            guard=within_limit,
        )

    def list_keys(self, account_id: uuid.UUID) -> list[dict[str, Any]]:
        """The account's keys, oldest first, without secrets or hashes (revoked ones included)."""
        now = utcnow()
        with self._db.session(readonly=True) as session:
            rows = session.scalars(
                select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at, ApiKey.id)
            ).all()
            return [_key_dict(row, now) for row in rows]

    def revoke_key(self, account_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, Any]:
        """Revoke one of the account's keys (kept, inactive, for the usage history).

        Raises ApiKeyNotFoundError for a key of another account or none: the same 404.
        """
        with self._db.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id))
            if row is None:
                raise errors.ApiKeyNotFoundError("No API key of this account has this id")
            row.is_active = False
            return _key_dict(row, utcnow())

    # --- helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _taken(session: Any, username_key: str, email: str) -> bool:
        return (
            session.scalar(
                select(Account.account_id).where(
                    (Account.username_key == username_key) | (Account.email == email)
                )
            )
            is not None
        )

    def _hash(self, password: str) -> str:
        with self._hashing:
            return self._hasher.hash(password)

    def _verify(self, password_hash: str, password: str) -> bool:
        with self._hashing:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError, UnicodeEncodeError):
                # UnicodeEncodeError: a lone surrogate (JSON "\ud800"), which no password holds.
                return False


def _hidden_character(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """The first character of ``value`` in Unicode category Cc, Cf or Cs not in ``allowed``."""
    for char in value:
        if char not in allowed and unicodedata.category(char) in _HIDDEN_CATEGORIES:
            return char
    return None


def _check_text(field: str, value: str, *, allowed: frozenset[str] = frozenset()) -> None:
    """ValidationFailedError naming ``field`` when ``value`` holds a control or format character."""
    char = _hidden_character(value, allowed)
    if char is not None:
        raise errors.ValidationFailedError(
            f"{field} must not contain control or invisible characters (found U+{ord(char):04X})",
            fields=[field],
        )


def _check_password(password: str, username: str, email: str) -> None:
    if any(unicodedata.category(char) == "Cs" for char in password):
        # argon2 hashes UTF-8, which a lone surrogate has no encoding in.
        raise errors.ValidationFailedError(
            "password must not contain lone surrogates (invalid Unicode)", fields=["password"]
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.WeakPasswordError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise errors.WeakPasswordError(f"The password must have at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if lowered in (username.lower(), email.lower(), email.split("@", 1)[0].lower()):
        raise errors.WeakPasswordError("The password must differ from the username and the email")


def _view(row: Account) -> AccountView:
    return AccountView(
        account_id=row.account_id,
        username=row.username,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        account_status=row.account_status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_login=row.last_login,
        profile_image_url=row.profile_image_url,
    )


def _key_dict(row: ApiKey, now: datetime) -> dict[str, Any]:
    state = "active"
    if not row.is_active:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    return {
        "id": str(row.id),
        "prefix": row.key_prefix,
        "name": row.key_name,
        "role": row.role,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "state": state,
        "requests_made": row.requests_made,
        "request_limit": row.request_limit,
    }
