"""manage.py seed_demo: a realistic demo shop, loaded idempotently (``make run`` calls it).

The kernel imports no context, so each context seeds itself with its own ``seed_<context>``
command; this one runs those that exist, in context order (catalog before inventory), and
passes each the options it understands. Running it twice changes nothing; ``--products N``
grows the catalog for benchmarks.
"""

from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command, get_commands, load_command_class

from shop.demo import demo_data_refused_in_production


class Command(BaseCommand):
    help = "Load demo data into every context (idempotent): >= 10 categories and 1,000 products with stock."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=1000, help="How many demo products (default 1000).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")

    def handle(self, *args, **options):
        demo_data_refused_in_production()
        if options["products"] < 0:
            raise CommandError("--products must be >= 0")
        commands = get_commands()
        offered = {"products": options["products"], "no_progress": options["no_progress"]}
        for alias in settings.CONTEXTS:
            name = f"seed_{alias}"
            if name not in commands:
                continue
            command = load_command_class(commands[name], name)
            accepted = {action.dest for action in command.create_parser("manage.py", name)._actions}
            call_command(command, stdout=self.stdout, stderr=self.stderr,
                         **{key: value for key, value in offered.items() if key in accepted})  # fmt: skip
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
