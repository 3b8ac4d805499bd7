"""Forgiving search: other searches offered when one finds no contact or very few, from the
words of the names and places (crm_word, crm/db/words.sql). Staff type what they hear on
the phone: `hubr`, `meir`, `zürrich`.

Decision: the words like a term are those within one typo of it (two from 8 letters:
Levenshtein distance, where two neighbouring letters swapped also count as one) or that
sound alike (double metaphone: Meier, Maier, Mayer and Meyer), best first: the fewest
typos, then those that sound alike, then the most trigrams in common (`dubios`: Dubois, one
swap, before Tobias, which sounds alike but is three letters off). A term that is part
of no word (`hubr`) is replaced by its words; if every term is part of some word (`mayer`
finds one Mayer), each term in turn is. Terms shorter than 3 letters and numbers are kept
as typed. Each search offered finds contacts (checked, filters aside). The view answers
the first one's page when the search found nothing (`"fuzzy": true`), and lists them all
(`"suggestions"`) when it found fewer than FEW_MATCHES."""

from __future__ import annotations

from crm.params import ListQuery
from crm.selectors.count import Count
from crm.selectors.db import fetch_rows
from crm.selectors.facts import resolve_held_terms
from crm.sql import Binder, query_where_sql

FEW_MATCHES = 3
MAX_SUGGESTIONS = 5
MIN_LETTERS = 3
LONG_WORD = 8  # letters from which two typos are forgiven

# Whether a term is part of some word, and the words like it, best first (see the module's
# docstring). Candidates: the words with trigrams in common (pg_trgm's similarity), those
# that sound alike, those with two neighbouring letters swapped, and those that begin with
# the term's first letter and are about as long: a short word with a letter changed in its
# middle shares too few trigrams (`lewi` and Levi: 0.25, under the threshold of 0.3). Every
# argument is a constant, so the immutable crm_fold(), crm_sort_letters() and dmetaphone()
# of it are folded at plan time and crm_word's indexes serve `~`, `%`, `=` and the range.
_WORDS_LIKE = """
WITH swapped AS (SELECT ARRAY(SELECT crm_fold(s) FROM unnest(%(swaps)s::text[]) s) AS folds)
SELECT EXISTS (SELECT 1 FROM crm_word WHERE folded ~ crm_search_pattern(%(term)s)),
       ARRAY(
    SELECT word FROM crm_word, swapped
     WHERE (folded %% crm_fold(%(term)s)
            OR (sound = dmetaphone(crm_fold(%(term)s)) AND sound <> '')
            OR folded = ANY(swapped.folds)
            OR (letters LIKE left(crm_sort_letters(%(term)s), 1) || '%%'
                AND abs(length(folded) - length(crm_fold(%(term)s))) <= %(typos)s))
       AND folded <> crm_fold(%(term)s)
       AND (folded = ANY(swapped.folds)
            OR levenshtein_less_equal(folded, crm_fold(%(term)s), %(far)s) <= CASE
                   WHEN sound = dmetaphone(crm_fold(%(term)s)) AND sound <> '' THEN %(far)s
                   ELSE %(typos)s END)
     ORDER BY CASE WHEN folded = ANY(swapped.folds) THEN 1
                   ELSE levenshtein(folded, crm_fold(%(term)s)) END,
              sound = dmetaphone(crm_fold(%(term)s)) DESC,
              similarity(folded, crm_fold(%(term)s)) DESC, word
     LIMIT %(most)s)
  FROM swapped
"""


def asks_for_suggestions(query: ListQuery, count: Count) -> bool:
    return bool(query.search) and count.exact and count.value < FEW_MATCHES


def search_suggestions(terms: list[str]) -> list[list[str]]:
    """Searches like `terms` that find contacts, best first."""
    alike = [_words_like(t) if len(t) >= MIN_LETTERS else (True, []) for t in terms]
    if any(not known and words for known, words in alike):
        # each unknown term replaced by its first word, its second...
        tried = [_unknown_replaced(terms, alike, rank) for rank in range(MAX_SUGGESTIONS)]
    else:  # or each term in turn by each of its words
        tried = [
            [*terms[:n], word, *terms[n + 1 :]]
            for n, (_, words) in enumerate(alike)
            for word in words
        ]
    offered: list[list[str]] = []
    for search in tried[: 2 * MAX_SUGGESTIONS]:
        if search not in offered and len(offered) < MAX_SUGGESTIONS and _finds(search):
            offered.append(search)
    return offered


def _unknown_replaced(
    terms: list[str], alike: list[tuple[bool, list[str]]], rank: int
) -> list[str]:
    return [
        words[min(rank, len(words) - 1)] if not known and words else term
        for term, (known, words) in zip(terms, alike, strict=True)
    ]


def _words_like(term: str) -> tuple[bool, list[str]]:
    """Whether `term` is part of some word, and the words like it."""
    typos = 1 if len(term) < LONG_WORD else 2
    # two neighbouring letters swapped is one typo too (Levenshtein counts two)
    swaps = [term[:n] + term[n + 1] + term[n] + term[n + 2 :] for n in range(len(term) - 1)]
    params = {"term": term, "swaps": swaps, "typos": typos, "far": typos + 2,
              "most": MAX_SUGGESTIONS}  # fmt: skip
    ((known, words),) = fetch_rows(_WORDS_LIKE, params)
    return bool(known), list(dict.fromkeys(words))  # (a word stored twice by a race)


# Whether a search finds a contact. An EXISTS is a LIMIT 1, for which the planner walks the
# table (or the id index) expecting to stop at the first of the matches it guesses: with
# none there it reads every row (`search=müller maier` tried `meier müller`: 9,801
# expected, none, 0.8 s at 3M). A count has no such gamble: the planner reads all the
# matches its cheapest way (a bitmap of the trigram index for these), but a common word's
# are many (Huber: 17 ms where the walk took 0.4). So a block sample of 0.1% of the table
# first (about 3,600 rows at 3M, 1-2 ms), where a common word is found at once; the count
# only when the sample has none, so when the matches are few. Each term is read as what
# holds it, as the list reads it (facts.resolve_held_terms): the count of `müller schmid`'s
# alternatives ANDed two trigram bitmaps of common words and rechecked the rows (35-72 ms
# each at 3M), where the names' b-trees give them without a recheck.
_FINDS = """
SELECT EXISTS (SELECT 1 FROM crm_contactrow TABLESAMPLE SYSTEM (0.1) REPEATABLE (0) WHERE {w})
    OR (SELECT count(*) FROM crm_contactrow WHERE {w}) > 0
"""


def _finds(search: list[str]) -> bool:
    bind = Binder()
    where = query_where_sql(resolve_held_terms(ListQuery(search=search)), bind)
    ((found,),) = fetch_rows(_FINDS.format(w=where), bind.params)
    return bool(found)
