"""Writes of the accounts context: each function is one use case in one transaction on its alias."""

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction

from apps.accounts.errors import EmailTaken
from apps.accounts.models import User, normalize_email


def user_register(*, email: str, password: str, name: str = "") -> User:
    """Create a customer account.

    Password rules are Django's validators (length, common passwords, similarity to the
    email/name); they raise ``django.core.exceptions.ValidationError`` for the view to map.
    The existence check gives the friendly error; the unique index is what makes it true
    when two registrations race.
    """
    email = normalize_email(email)
    validate_password(password, user=User(email=email, name=name))
    try:
        with transaction.atomic(using="accounts"):
            if User.objects.filter(email=email).exists():
                raise EmailTaken(email)
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError:
        raise EmailTaken(email)


def user_authenticate(*, email: str, password: str) -> User | None:
    """The login check. Unknown emails and inactive users cost the same hashing time as a
    wrong password (Django's ModelBackend does that), so responses don't reveal which emails
    have accounts. Django may rehash an outdated password hash here, hence a service."""
    user = authenticate(None, email=normalize_email(email), password=password)
    return user if isinstance(user, User) else None


def user_update_profile(*, user_id, name: str) -> User:
    with transaction.atomic(using="accounts"):
        user = User.objects.select_for_update().get(pk=user_id)
        user.name = name
        user.save(update_fields=["name"])
        return user
