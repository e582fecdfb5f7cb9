"""`chanwatch rules add|list|remove|test`: alert rules (saved searches) on the archive alone.

`rules test` shows which archived posts a rule would match — the same search `/search` runs.
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.common import (
    EXIT_OK,
    CliError,
    Command,
    add_command_parser,
    archive_path,
    chat_id,
    day,
    environment,
    int_at_least,
    open_archive,
)
from bot.cli.search import format_post
from bot.config import alert_chat_from
from storage.database import run_in_transaction
from storage.rules import RuleError, add_rule, list_rules, remove_rule
from storage.search import search


def _rules_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    chat_help = "the subscriber chat id (default: CHANWATCH_ALERT_CHAT)"
    add = add_command_parser(sub, "add", help="add an alert rule (a saved search)")
    query_help = "a search query, e.g. 'canada sanctions -visa'"
    # nargs="?" lets a QUERY start with - (bot.cli.app takes it); _rules says when it is missing
    add.add_argument("query", metavar="QUERY", nargs="?", help=query_help)
    add.add_argument("--chat", type=chat_id, help=chat_help)
    listing = add_command_parser(sub, "list", help="rules of one chat (or of every chat)")
    listing.add_argument("--chat", type=chat_id, help="only this chat's rules")
    listing.add_argument("--json", action="store_true", help="one JSON object per rule per line")
    remove = add_command_parser(sub, "remove", help="remove a rule by id")
    remove.add_argument("rule_id", type=int, metavar="ID")
    remove.add_argument("--chat", type=chat_id, help="refuse unless the rule belongs to this chat")
    test = add_command_parser(sub, "test", help="which archived posts a rule would match")
    test.add_argument("query", metavar="QUERY", nargs="?", help=query_help)
    test.add_argument("--since", type=day, metavar="DATE", help="only posts from this day on (YYYY-MM-DD)")
    test.add_argument("--limit", type=int_at_least(1), default=10, help="posts to show (default 10)")


def _rules(args: argparse.Namespace) -> int:
    if args.action in ("add", "test") and args.query is None:
        raise CliError(f"rules {args.action}: give a query, e.g. "
                       f"chanwatch rules {args.action} 'canada sanctions'")
    if args.action == "test":
        return _rules_test(args)
    chat = args.chat
    if args.action == "add" and chat is None:
        chat = alert_chat_from(environment(args))
        if chat is None:
            raise CliError("rules add: give --chat CHAT_ID (or set CHANWATCH_ALERT_CHAT)")
    with open_archive(archive_path(args), must_exist=args.action != "add",
                      readonly=args.action == "list") as conn:
        try:
            if args.action == "add":
                rule, created = run_in_transaction(conn, add_rule, chat, args.query)
                verb = "added" if created else "already there"
                print(f"rule {rule.id} {verb} for chat {rule.chat_id}: {rule.query}")
            elif args.action == "remove":
                rule = run_in_transaction(conn, remove_rule, args.rule_id, chat)
                print(f"rule {rule.id} removed from chat {rule.chat_id}: {rule.query}")
            else:
                rules = list_rules(conn, chat)
                for rule in rules:
                    if args.json:
                        print(json.dumps({"id": rule.id, "chat_id": rule.chat_id, "query": rule.query,
                                          "active": rule.active, "created_at": rule.created_at},
                                         ensure_ascii=False))
                    else:
                        state = "" if rule.active else "  (inactive)"
                        print(f"{rule.id:>5}  chat {rule.chat_id}  {rule.query}{state}")
                if not rules and not args.json:
                    print("no rules" + (f" for chat {chat}" if chat is not None else ""), file=sys.stderr)
        except RuleError as exc:
            raise CliError(str(exc)) from None
    return EXIT_OK


def _rules_test(args: argparse.Namespace) -> int:
    text = args.query.strip()
    if args.since is not None:
        text = f"({text}) since:{args.since.isoformat()}" if text else f"since:{args.since.isoformat()}"
    with open_archive(archive_path(args), readonly=True) as conn:
        page = search(conn, text, limit=args.limit)
    one = page.total == 1 and page.total_exact
    print(f"{page.total_text} archived {'post matches' if one else 'posts match'} {args.query!r}"
          + (f" since {args.since.isoformat()}" if args.since else ""))
    for post in page.posts:
        print(format_post(post))
    if page.total > len(page.posts):
        more = page.total - len(page.posts)
        print(f"… and {'' if page.total_exact else 'at least '}{more:,} more (--limit to see more)")
    return EXIT_OK


COMMANDS = (
    Command("rules", "alert rules: add, list, remove, test", _rules, _rules_arguments,
            "Alert rules are saved searches in the query language of `chanwatch search` and /search: a new "
            "post alerts a chat when searching for one of its rules would find it."),
)
