"""A search's rank, which lists its best matches first when it has no `ordering` (crm/params.py
gives it the order RANK, id): the tiers of a row and the words that decide them.

Decision, the tiers, best first, each judged on the whole value, ignoring case, accents,
spaces and punctuation, a term matching in any of its spellings (crm_search_pattern()):
0. the last name is a term (`huber`: Huber, HUBER; `mueller`: Müller, Mueller);
1. the first name is a term;
2. the last or first name starts with a term of 3 letters or more (`hub`: Huber, Hubert);
3. the city or the street is a term;
4. anything else (`huber` in Huberstraße, the digits of a phone number).

A tier is found through the words of the names and places (crm_word, crm/db/words.sql)
that are a term or start with one: its rows are ranges of those words' sort keys
(`last_name_key LIKE 'huber' || U+0001 || '%'`, crm/db/schema.sql): index ranges, cheap
even when a tier is empty, and a rank that folds nothing per row. The words are read once
per request (resolve_rank), before the count, which sorts few matches by their rank too.
"""

from __future__ import annotations

from dataclasses import replace

from crm.fields import RANK
from crm.params import ListQuery, RankWords
from crm.selectors.db import Fetch, fetch_rows
from crm.sql import Binder, Kind

# Per term, the words it is (all of them) and at most this many more that it starts, the
# first in sort order: a short term starts hundreds of names, whose ranges would cost more
# than they sort.
MOST_WORDS = 50
# The sort letters of the words that a term starts (in any spelling), each with whether a
# term is the whole word; a term shorter than 3 letters ranks only whole words.
_WORDS = """
SELECT letters, bool_or(whole)
  FROM unnest(%(terms)s::text[]) t,
       LATERAL (SELECT letters, folded ~ ('^(' || crm_search_pattern(t) || ')$') AS whole
                  FROM crm_word
                 WHERE folded ~ ('^(' || crm_search_pattern(t) || ')')) w
 WHERE whole OR length(t) >= 3
 GROUP BY 1
 ORDER BY bool_or(whole) DESC, 1
"""
# Each tier's sort key columns, and whether a term is the whole word there (else its start)
TIERS = (
    (("last_name_key",), True),
    (("first_name_key",), True),
    (("last_name_key", "first_name_key"), False),
    (("address_city_key", "address_street_key"), True),
)


# The columns the tiers read, which a count that sorts the matches keeps (count.py)
TIER_COLUMNS = list(dict.fromkeys(column for columns, _ in TIERS for column in columns))


def words_of(terms: list[str], fetch: Fetch = fetch_rows) -> RankWords:
    rows = fetch(_WORDS, {"terms": terms})
    whole = [w for w, is_whole in rows if is_whole]
    return RankWords(whole, whole + [w for w, is_whole in rows if not is_whole][:MOST_WORDS])


def resolve_rank(query: ListQuery, fetch: Fetch = fetch_rows) -> ListQuery:
    """`query` with the words that rank its search's matches, if it lists them by rank."""
    ranked = query.ordering[0].field is RANK
    return replace(query, rank_words=words_of(query.search, fetch) if ranked else None)


def rank_words(query: ListQuery, fetch: Fetch = fetch_rows) -> RankWords:
    """The words resolve_rank() read for `query`, or read now if it was not resolved."""
    return query.rank_words if query.rank_words is not None else words_of(query.search, fetch)


def tier_sql(words: RankWords, n: int, bind: Binder) -> str:
    """Whether a row is in tier n or in a better one (rank_sql tells them apart)."""
    columns, whole = TIERS[n]
    ranges = [
        f"{column} LIKE {bind(letters + chr(1) + '%', Kind.TEXT)}"
        for column in columns
        for letters in (words.whole if whole else words.start)
    ]
    return f"({' OR '.join(ranges)})" if ranges else "FALSE"


def rank_sql(words: RankWords, bind: Binder) -> str:
    """The row's tier, 0 the best."""
    cases = " ".join(f"WHEN {tier_sql(words, n, bind)} THEN {n}" for n in range(len(TIERS)))
    return f"CASE {cases} ELSE {len(TIERS)} END"


def source_sql(
    query: ListQuery, bind: Binder, fetch: Fetch = fetch_rows, rows: str = "crm_contactrow"
) -> str:
    """The read model's `rows`, with each row's `search_rank` if `query` lists them by rank,
    under the read model's name."""
    if query.ordering[0].field is not RANK:
        return f"{rows} crm_contactrow"
    rank = rank_sql(rank_words(query, fetch), bind)
    return f"(SELECT {rank} AS search_rank, * FROM {rows}) crm_contactrow"
