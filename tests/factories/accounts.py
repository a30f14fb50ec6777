import factory
from django.contrib.auth.models import Permission

from apps.accounts.models import User
from shop.security import staff as staff_perms

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A customer with a known password (``PASSWORD``); ``staff=True`` for a staff user.

    A staff user holds every staff permission unless ``perms=[...]`` names the ones it holds
    (``perms=[]``: staff with no permission at all, the least-privilege tests' attacker).
    Permissions are given directly rather than through the migration's groups, which a
    transactional test's flush removes.
    """

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

    @factory.post_generation
    def perms(self, create, extracted, **kwargs):
        if not create or not self.is_staff:
            return
        codenames = [codename for codename, _ in staff_perms.PERMISSIONS] if extracted is None else extracted
        if codenames:
            permissions = Permission.objects.using("accounts").filter(
                content_type__app_label=staff_perms.APP_LABEL, codename__in=codenames
            )
            self.user_permissions.add(*permissions)
