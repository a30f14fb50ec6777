"""manage.py seed_inventory: first stock for every catalog product that has none yet.

Stock items normally appear through ``catalog.product_created``; this command does not wait
for that delivery (a worker may not be running yet): it opens missing items itself, which the
event handler then finds already there.
"""

from django.core.management import BaseCommand
from tqdm import tqdm

from apps.catalog import facade as catalog
from apps.inventory import services
from shop.demo import demo_data_refused_in_production

BATCH = 500


def demo_quantity(product_id) -> int:
    """Deterministic and varied: mostly well stocked, some low, a few sold out."""
    bucket = product_id.int % 100
    if bucket < 4:
        return 0
    if bucket < 12:
        return 1 + bucket % 4
    return 10 + product_id.int % 190


class Command(BaseCommand):
    help = "Give every catalog product without stock history its demo stock (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        demo_data_refused_in_production()
        product_ids = catalog.product_ids_list()
        stocked = 0
        with tqdm(total=len(product_ids), desc="inventory", unit="item", disable=options["no_progress"]) as bar:
            for start in range(0, len(product_ids), BATCH):
                batch = product_ids[start : start + BATCH]
                stocked += services.stock_seed(quantities={pid: demo_quantity(pid) for pid in batch})
                bar.update(len(batch))
        self.stdout.write(f"Inventory: {stocked} products stocked ({len(product_ids) - stocked} already had stock).")
