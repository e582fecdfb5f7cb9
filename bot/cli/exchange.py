"""`chanwatch import` and `chanwatch export`: files in and out of the archive (`storage.exchange`)."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import TextIO

from bot.cli.common import EXIT_OK, EXIT_USAGE, PROG, CliError, Command, archive_path, open_archive, plural
from bot.cli.media import media_dir
from bot.cli.progress import progress_bars
from storage.exchange import ExchangeError, ImportReport, ImportStopped, export_posts, import_file, one_line
from storage.exchange.export import copy_media


def sample_files() -> list[str]:
    """Names of the bundled sample exports in `bot/sample/`."""
    folder = resources.files("bot").joinpath("sample")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith("_result.json"))


# --- import ----------------------------------------------------------------------------------------


def import_line(report: ImportReport, shown: str) -> str:
    """One line per imported file: `shown: desktop export of X: 924 messages (908 new, ...)`, and the
    malformed messages it skipped, the first few named: `; 2 malformed messages skipped: message 17
    (text_entities[1]: a number 5, expected an object), ...`. A line break in a name is escaped."""
    skipped = f", {report.service_skipped} service skipped" if report.service_skipped else ""
    line = (
        f"{shown}: {report.format} export of {report.channel}: {report.messages} "
        f"{plural(report.messages, 'message')} ({report.new} new, {report.updated} updated, "
        f"{report.unchanged} unchanged{skipped}), {report.posts_new} new {plural(report.posts_new, 'post')}"
    )
    if report.malformed:
        unit = "message" if report.format == "desktop" else "post"
        more = report.malformed - len(report.malformed_shown)
        named = "; ".join(report.malformed_shown) + (f"; and {more} more" if more > 0 else "")
        line += f"; {report.malformed} malformed {plural(report.malformed, unit)} skipped: {named}"
    return one_line(line)


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="Telegram Desktop export (result.json) or a chanwatch JSONL export")
    parser.add_argument("--sample", action="store_true",
                        help="import the bundled fictional sample (a ministry and an embassy channel)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _import(args: argparse.Namespace) -> int:
    if not args.paths and not args.sample:
        raise CliError("import: give one or more files to import, or --sample")
    status = EXIT_OK
    archive = archive_path(args)
    with open_archive(archive, must_exist=False) as conn, ExitStack() as stack:
        sources: list[tuple[str, Path]] = []
        if args.sample:
            folder = resources.files("bot").joinpath("sample")
            for name in sample_files():
                sources.append((f"sample/{name}", stack.enter_context(resources.as_file(folder / name))))
        sources += [(p, Path(p)) for p in args.paths]
        for shown, path in sources:
            try:
                with progress_bars(not args.no_progress, unit="items") as progress:
                    report = import_file(conn, path, progress=progress, archive=archive)
            except ExchangeError as exc:
                print(f"{PROG}: {one_line(str(exc))}", file=sys.stderr)
                status = EXIT_USAGE
                if isinstance(exc, ImportStopped) and exc.archive_kind is not None:
                    break  # the archive, not this file, stopped it: the next files would stop too
                continue
            print(import_line(report, shown))
    return status


# --- export ----------------------------------------------------------------------------------------


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", metavar="QUERY", help="export only the posts this query finds")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl")
    parser.add_argument("--out", metavar="PATH", help="write here instead of standard output")
    parser.add_argument("--with-media", metavar="DIR",
                        help="copy the exported posts' downloaded files into DIR (their `path`s)")
    parser.add_argument("--media-dir", metavar="PATH", help="the media store to copy from (default: "
                        "$CHANWATCH_MEDIA_DIR, else media/ beside the archive)")


def _export(args: argparse.Namespace) -> int:
    stored: list[str] | None = [] if args.with_media is not None else None
    with open_archive(archive_path(args), readonly=True) as conn:
        if args.out is None:
            export_posts(conn, args.query, args.format, sys.stdout, stored)
            sys.stdout.flush()
        else:
            try:
                out: TextIO = open(args.out, "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
            with out:
                count = export_posts(conn, args.query, args.format, out, stored)
            print(f"exported {count} {plural(count, 'post')} to {args.out}", file=sys.stderr)
    if stored is None:
        return EXIT_OK
    return _copy_media(media_dir(args), stored, Path(args.with_media).expanduser())


def _copy_media(root: Path, stored: list[str], dest: Path) -> int:
    """Copy the exported files into `dest`; one line for the copy, one for the files missing (exit 2)."""
    try:
        copied, missing = copy_media(root, stored, dest)
    except OSError as exc:
        where = exc.filename or dest
        raise CliError(f"cannot copy media into {dest}: {where}: {exc.strerror or exc}") from exc
    files = len(set(stored))
    print(f"copied {copied} of {files} media {plural(files, 'file')} to {dest}", file=sys.stderr)
    if missing:
        print(f"{PROG}: {len(missing)} media {plural(len(missing), 'file')} missing from the media store "
              f"{root} (first: {missing[0]}); run `chanwatch media verify`, point --media-dir at the store, "
              "or restore the files from a backup", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


COMMANDS = (
    Command("import", "import Telegram Desktop exports or a chanwatch JSONL export", _import,
            _import_arguments,
            "Import Telegram Desktop 'Export chat history' JSON files (one channel each) or a JSONL file "
            "written by `chanwatch export`. Importing again changes nothing."),
    Command("export", "export posts with provenance and sightings as JSONL or CSV", _export,
            _export_arguments,
            "Write every canonical post (or those QUERY finds) with its origin and every sighting. "
            "JSONL can be imported back with `chanwatch import`; --with-media DIR copies the posts' "
            "downloaded files beside it."),
)
