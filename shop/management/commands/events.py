"""Operate the event plumbing: export/check schemas, replay dead letters, sweep, prune, list.

manage.py events schema [--check] [--force] [--dir PATH]
manage.py events replay <dead-letter-id> | --all-failed [--context ALIAS]
manage.py events sweep [--min-age SECONDS]
manage.py events prune
manage.py events dead-letters [--status FAILED|REPLAYED|ALL] [--consumer NAME] [--type TYPE] [--limit N]
"""

import uuid
from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, CommandError

from shop.events import contract, inbox, relay
from shop.events.store import dead_letter_model


def default_schema_dir() -> Path:
    return Path(settings.BASE_DIR) / "tests" / "contract" / "events"


class Command(BaseCommand):
    help = "Event plumbing: schema export/check, dead-letter replay and listing, sweep, prune."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)

        schema = sub.add_parser("schema", help="Export registered event schemas (new versions only).")
        schema.add_argument("--check", action="store_true", help="Only verify; exit 1 on any difference.")
        schema.add_argument("--force", action="store_true", help="Rewrite changed files (never for released ones).")
        schema.add_argument("--dir", type=Path, default=None, help="Target directory (tests/contract/events).")

        replay = sub.add_parser("replay", help="Run dead-lettered deliveries again, in this process.")
        replay.add_argument("dead_letter_id", nargs="?", help="Id of one dead letter.")
        replay.add_argument("--all-failed", action="store_true", help="Every dead letter still FAILED.")
        replay.add_argument("--context", choices=settings.CONTEXTS, help="Limit --all-failed to one context.")

        sweep = sub.add_parser("sweep", help="Send unsent outbox rows now.")
        sweep.add_argument("--min-age", type=float, default=0.0, help="Only rows older than this (seconds).")

        sub.add_parser("prune", help="Delete sent outbox rows and inbox rows past retention.")

        letters = sub.add_parser("dead-letters", help="List dead letters.")
        letters.add_argument("--status", default="FAILED", choices=["FAILED", "REPLAYED", "ALL"])
        letters.add_argument("--consumer")
        letters.add_argument("--type", dest="event_type")
        letters.add_argument("--limit", type=int, default=50)

    def handle(self, *args, **options):
        action = options["action"].replace("-", "_")
        getattr(self, f"do_{action}")(options)

    def do_schema(self, options):
        directory = options["dir"] or default_schema_dir()
        if options["check"]:
            found = contract.problems(directory)
            for problem in found:
                self.stderr.write(str(problem))
            for path in contract.stale_files(directory):
                self.stdout.write(f"note: {path.name} matches no registered event here")
            if found:
                raise CommandError(f"{len(found)} event schema problem(s)")
            self.stdout.write(self.style.SUCCESS("Event schemas match their committed contracts."))
            return
        written, refused = contract.export(directory, force=options["force"])
        for path in written:
            self.stdout.write(f"wrote {path}")
        broken = refused + [p for p in contract.problems(directory) if p.kind == "no-upcaster"]
        for problem in broken:
            self.stderr.write(str(problem))
        if broken:
            raise CommandError(f"{len(broken)} event schema problem(s)")
        if not written:
            self.stdout.write("Nothing to export: every registered schema is committed.")

    def do_replay(self, options):
        if options["all_failed"] == bool(options["dead_letter_id"]):
            raise CommandError("Give either a dead-letter id or --all-failed.")
        if options["all_failed"]:
            outcome = inbox.replay_all_failed(options["context"])
            self.stdout.write(f"replayed {outcome['replayed']}, failed again {outcome['failed']}")
            if outcome["failed"]:
                raise CommandError("Some dead letters failed again; see `events dead-letters`.")
            return
        try:
            letter_id = uuid.UUID(options["dead_letter_id"])
        except ValueError:
            raise CommandError(f"Not a dead-letter id: {options['dead_letter_id']!r}")
        alias = next(
            (a for a in settings.CONTEXTS if dead_letter_model(a).objects.using(a).filter(pk=letter_id).exists()),
            None,
        )
        if alias is None:
            raise CommandError(f"No dead letter {letter_id}")
        if not inbox.replay(alias, letter_id):
            raise CommandError(f"Dead letter {letter_id} failed again; see `events dead-letters`.")
        self.stdout.write(self.style.SUCCESS(f"Replayed {letter_id} ({alias})."))

    def do_sweep(self, options):
        for alias, count in relay.sweep(min_age_seconds=options["min_age"]).items():
            self.stdout.write(f"{alias}: sent {count}")

    def do_prune(self, options):
        for alias, count in relay.prune().items():
            self.stdout.write(f"{alias}: deleted {count}")

    def do_dead_letters(self, options):
        rows = []
        for alias in settings.CONTEXTS:
            DeadLetter = dead_letter_model(alias)
            query = DeadLetter.objects.using(alias).all()
            if options["status"] != "ALL":
                query = query.filter(status=options["status"])
            if options["consumer"]:
                query = query.filter(consumer=options["consumer"])
            if options["event_type"]:
                query = query.filter(event_type=options["event_type"])
            rows += [(alias, letter) for letter in query.order_by("-created_at")[: options["limit"]]]
        rows.sort(key=lambda pair: pair[1].created_at, reverse=True)
        if not rows:
            self.stdout.write("No dead letters.")
            return
        for alias, letter in rows[: options["limit"]]:
            error = letter.error.splitlines()[0][:100] if letter.error else ""
            self.stdout.write(
                f"{letter.id}  {alias:<9} {letter.status:<8} {letter.attempts:>2}x  "
                f"{letter.created_at:%Y-%m-%d %H:%M:%S}  {letter.consumer}  {letter.event_type}  {error}"
            )
