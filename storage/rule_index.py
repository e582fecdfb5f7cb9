"""The rule index: active rules keyed by what a matching post must hold, so a post is tried only
against the rules it could match.

A rule is indexed by one required operand of its query (a set of stems, words, hashtags or word
prefixes, or a fact such as a channel, a language or an `is:` value), chosen by cost: any text term
before a filter, since a channel or language is held by a large share of posts and a word by few.
Rules that require nothing in particular (e.g. `since:` alone) are tried on every post. An `exact`
rule is one whose index key is its whole condition: finding it is matching it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage.query import And, Filter, Node, Or, Query, Text
from storage.records import PostDoc

__all__ = ["IndexedRule", "Key", "Requirement", "RuleIndex", "requirement"]

Key = tuple[str, str]
"""What an index entry is about: (kind, value), kind one of stems, words, tags, prefix, channel,
origin, lang, is."""

_TEXT_COST = 1
_PREFIX_COST = 3
_FILTER_COST = 64
"""Costs used to choose which AND operand to index a rule by: a channel, language or relation is held
by a large share of posts, a word by few, so any text term is preferred over a filter."""

_HEAD = 4
"""Prefix rules are indexed by at most this many first letters (and checked in full by the matcher)."""


# -- what a rule requires -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """Keys of which every post the node matches holds at least one; `exact`: holding one is enough."""

    keys: frozenset[Key]
    cost: int
    exact: bool


def requirement(node: Node) -> Requirement | None:
    """What a post must hold to match `node` (None: nothing in particular, try it on every post).

    Tokens of which a matching post holds at least one (for an AND the cheapest child's, for an OR
    the union of its children's, for a phrase its longest token), word prefixes (`lavr*` ->
    ("prefix", "lavr")) and the facts filters test, so that only `since:`/`until:`/negation-only
    rules need trying everywhere.
    """
    if isinstance(node, Text):
        if node.prefix:
            return Requirement(frozenset({("prefix", node.tokens[0])}), _PREFIX_COST, False)
        token = max(node.tokens, key=lambda t: (len(t), t))  # all are required: the longest is rarest
        return Requirement(frozenset({(node.column, token)}), _TEXT_COST, len(node.tokens) == 1)
    if isinstance(node, Filter):
        return _filter_requirement(node)
    if isinstance(node, And):
        options = [r for c in node.children if (r := requirement(c)) is not None]
        if not options:
            return None
        best = min(options, key=lambda r: (r.cost, sorted(r.keys)))
        return Requirement(best.keys, best.cost, False)
    if isinstance(node, Or):
        parts = [requirement(c) for c in node.children]
        if any(p is None for p in parts):
            return None
        keys = frozenset().union(*(p.keys for p in parts if p is not None))
        cost = sum(p.cost for p in parts if p is not None)
        return Requirement(keys, cost, all(p.exact for p in parts if p is not None))
    return None  # Not: a post need hold nothing to match a negation


def _filter_requirement(node: Filter) -> Requirement | None:
    """Filters compared with a set of facts (see `storage.query_ast.match_filter`) become keys."""
    if node.name == "channel":
        keys = {("channel", k) for k in node.keys}
    elif node.name == "from":
        keys = {("origin", k) for k in node.keys}
    elif node.name in ("lang", "is"):
        keys = {(node.name, node.value)}
    else:
        return None  # since:/until: compare dates
    return Requirement(frozenset(keys), _FILTER_COST * len(keys), True) if keys else None


# -- the index ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexedRule:
    """An active rule as the percolator holds it."""

    id: int
    chat_id: int
    query: Query
    exact: bool


class RuleIndex:
    """Rules by the keys one of which a matching post must hold; `match` tries only those candidates."""

    def __init__(self, rules: Iterable[tuple[IndexedRule, Requirement | None]]) -> None:
        self.rules: list[IndexedRule] = []
        self._always: list[int] = []
        by_kind: dict[str, dict[str, list[int]]] = {}
        prefixes: dict[int, dict[str, list[int]]] = {}
        for position, (rule, need) in enumerate(sorted(rules, key=lambda item: item[0].id)):
            self.rules.append(rule)
            if need is None:
                self._always.append(position)
                continue
            for kind, value in need.keys:
                if kind == "prefix":  # by its first _HEAD letters: one lookup per word finds them all
                    value = value[:_HEAD]
                    table = prefixes.setdefault(len(value), {})
                else:
                    table = by_kind.setdefault(kind, {})
                table.setdefault(value, []).append(position)
        # Only the tables some rule uses are probed; each as (which doc attribute, table).
        self._sets = [(attr, by_kind[kind]) for kind, attr in _SET_FACTS if kind in by_kind]
        self._lang = by_kind.get("lang")
        self._is = by_kind.get("is")
        self._prefixes = sorted(prefixes.items())

    def __len__(self) -> int:
        return len(self.rules)

    def _found(self, doc: PostDoc) -> set[int]:
        found = set(self._always)
        for attr, table in self._sets:
            for value in table.keys() & getattr(doc, attr):
                found.update(table[value])
        if self._lang is not None and doc.lang in self._lang:
            found.update(self._lang[doc.lang])
        if self._is is not None:
            for value in _is_facts(doc):
                if value in self._is:
                    found.update(self._is[value])
        for size, table in self._prefixes:
            # a word shorter than `size` gives a shorter head, which is no key of this table
            for head in table.keys() & {w[:size] for w in doc.words}:
                found.update(table[head])
        return found

    def candidates(self, doc: PostDoc) -> tuple[set[int], set[int]]:
        """(positions of the rules worth trying on `doc`, those of them that match without trying)."""
        found = self._found(doc)
        return found, {p for p in found if self.rules[p].exact}

    def match(self, doc: PostDoc) -> list[IndexedRule]:
        """The rules matching `doc`, by rule id.

        An `exact` rule is found only through one of its keys, which is then its whole condition.
        """
        rules = self.rules
        out = []
        for position in sorted(self._found(doc)):
            rule = rules[position]
            if rule.exact or rule.query.matches(doc):
                out.append(rule)
        return out


_SET_FACTS = (("stems", "stems"), ("words", "words"), ("tags", "tags"), ("channel", "channels"),
              ("origin", "origin"))
"""Index kinds looked up by intersecting the table's keys with a PostDoc attribute."""


def _is_facts(doc: PostDoc) -> list[str]:
    """The is: values `doc` has."""
    facts = list(doc.relations)
    if doc.edited:
        facts.append("edited")
    if doc.deleted:
        facts.append("deleted")
    return facts
