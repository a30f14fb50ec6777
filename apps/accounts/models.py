import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from shop.events.models import DeadLetterBase, InboxMessageBase, OutboxMessageBase
from shop.security import staff


def normalize_email(email: str) -> str:
    """One spelling per mailbox: logins and uniqueness are case-insensitive in practice."""
    return (email or "").strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email=normalize_email(username))

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Email is the login; the UUID primary key is what other contexts store."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    # Empty so that ``createsuperuser --noinput`` needs only DJANGO_SUPERUSER_EMAIL/PASSWORD.
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ("-date_joined",)
        # One permission per staff action (shop/security/staff.py; docs/security.md).
        permissions = staff.PERMISSIONS
        constraints = [
            # Every write path (API, admin, shell, bulk_create) must store the lowercase
            # spelling, so the plain unique index on email is a case-insensitive one.
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="accounts_user_email_lowercase"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class DeadLetter(DeadLetterBase):
    pass
