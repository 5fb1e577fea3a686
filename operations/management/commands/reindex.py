from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from operations import reindex


class Command(BaseCommand):
    help = "Re-embed stored pages: a file, a KB, a user's KBs or everything (optionally with another embedder)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--file", dest="file_id")
        target.add_argument("--kb", dest="knowledge_base_id")
        target.add_argument("--user", dest="username")
        target.add_argument("--all", action="store_true")
        parser.add_argument("--embedder", help="build a new collection with this embedder, then switch to it")
        parser.add_argument("--lexical", action="store_true",
                            help="only backfill the lexical index from the stored text layer (no re-embedding)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **opts):
        if opts["file_id"]:
            if opts["embedder"] or opts["lexical"]:
                raise CommandError("--embedder works per knowledge base (use --kb).")
            report = reindex.reindex_file(file_id=opts["file_id"], dry_run=opts["dry_run"])
        else:
            ids = ([opts["knowledge_base_id"]] if opts["knowledge_base_id"]
                   else reindex.knowledge_base_ids_of(username=opts["username"]))
            total = sum(reindex.indexable_files(kb_id).count() for kb_id in ids)
            with tqdm(total=total, unit="file", disable=opts["verbosity"] < 1, file=self.stderr._out) as bar:
                if opts["lexical"]:
                    report = reindex.lexical_backfill(knowledge_base_ids=ids, on_file=lambda: bar.update(1))
                else:
                    report = reindex.reindex_many(knowledge_base_ids=ids, embedder_name=opts["embedder"],
                                                  dry_run=opts["dry_run"], on_file=lambda: bar.update(1))
        prefix = "[dry run] would reindex" if opts["dry_run"] else "Reindexed"
        kind = "text" if opts["lexical"] else "vector"
        self.stdout.write(f"{prefix} {report.knowledge_bases} knowledge bases, {report.files} files, "
                          f"{report.pages} pages; {report.rows} {kind} rows; switched: {len(report.switched)}; "
                          f"errors: {len(report.errors)}")
        for error in report.errors:
            self.stderr.write(error)
        if report.errors:
            raise CommandError(f"{len(report.errors)} errors")
