"""manage.py seed_catalog: the demo categories and products (idempotent, by slug and SKU)."""

from django.core.management import BaseCommand
from tqdm import tqdm

from apps.catalog import demo, services
from shop.demo import demo_data_refused_in_production

BATCH = 250


class Command(BaseCommand):
    help = "Load the demo catalog: at least 10 categories and --products products (existing ones are kept)."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=1000, help="How many demo products (default 1000).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        demo_data_refused_in_production()
        count = options["products"]
        created = 0
        with tqdm(total=count, desc="catalog", unit="product", disable=options["no_progress"]) as bar:
            for batch in demo.products(count, batch=BATCH):
                created += services.catalog_seed(categories=demo.categories(), products=batch)
                bar.update(len(batch))
        self.stdout.write(f"Catalog: {created} new products ({count - created} already there).")
