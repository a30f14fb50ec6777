"""Staff permissions: one per action that moves money or stock, changes the catalog, exposes
customers or steers the event machinery.

``is_staff`` only opens the door to the admin and the staff API; what a staff user may *do*
is one of these permissions, given through a group (support, warehouse, finance, catalog;
created by ``apps/accounts/migrations/0004_staff_groups.py``). They are declared on the
accounts ``User`` model (staff roles are an accounts concern), so every codename reads
``accounts.<codename>``; the kernel holds the list so that every context, the event admin
and the tests name them the same way without importing the accounts context.
"""

APP_LABEL = "accounts"

REFUND_PAYMENT = "refund_payment"
SHIP_ORDER = "ship_order"
ADJUST_STOCK = "adjust_stock"
EDIT_CATALOG = "edit_catalog"
VIEW_CUSTOMERS = "view_customers"
REPLAY_DEAD_LETTERS = "replay_dead_letters"
OPERATE_CHECKOUTS = "operate_checkouts"

# (codename, human name) as Django's Meta.permissions wants them.
PERMISSIONS = (
    (REFUND_PAYMENT, "Can refund payments"),
    (SHIP_ORDER, "Can ship and deliver orders"),
    (ADJUST_STOCK, "Can adjust stock levels"),
    (EDIT_CATALOG, "Can create, edit and deactivate products and categories"),
    (VIEW_CUSTOMERS, "Can view customers and their orders"),
    (REPLAY_DEAD_LETTERS, "Can replay dead-lettered events"),
    (OPERATE_CHECKOUTS, "Can retry or compensate checkout sagas"),
)


def perm(codename: str) -> str:
    """The full name ``User.has_perm`` takes: ``accounts.<codename>``."""
    return f"{APP_LABEL}.{codename}"


def staff_can(user, codename: str) -> bool:
    """An active staff member holding the permission (superusers hold every one)."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff and user.has_perm(perm(codename)))
