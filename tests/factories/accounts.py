import factory

from apps.accounts.models import User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A customer with a known password (``PASSWORD``); ``staff=True`` for a staff user."""

    class Meta:
        model = User
        database = "accounts"  # factory-boy defaults to "default", a dummy alias here
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    is_staff = False
    password = factory.django.Password(PASSWORD)

    class Params:
        staff = factory.Trait(is_staff=True)
        superuser = factory.Trait(is_staff=True, is_superuser=True)
