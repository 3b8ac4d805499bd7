"""The contact list over the read model (crm_contactrow), as the stages a list request
(crm/views.py) goes through, in order:

1. parse: the query string into a ListQuery (crm/params.py);
2. gather the facts: whether the columns the plan asks about have few distinct values, and
   the values that a substring filter on such a column matches (facts.py resolve_patterns),
   the search terms tested on the rows of the rest of the query (facts.py resolve_search),
   the words that rank a search's matches (rank.py resolve_rank),
   then the count of the matches, exact or estimated (count.py contact_count; or the ids
   of a result a page before counted, while the read model is unchanged, results.py), and the
   case variants of a case-insensitive filter (facts.py gather_facts);
3. choose a plan: how the first sort key's range and every other range of rows is read, a
   pure function of the query and the facts (plan.py; its walk budget in budget.py, what
   the order indexes give in indexes.py);
4. build the SQL: the page's keyset branches (pages.py), each read by the strategy chosen
   (strategies.py; ranges.py for those that read from the database while they build: the
   first keys of a page of several sort keys, the planner's estimate for a split search);
5. execute: one statement for the page's rows, serialised to JSON by PostgreSQL (db.py,
   pages.py contact_page);
6. respond: the body, links and Server-Timing (crm/views.py).

contacts.py reads one contact by id, for its own URL and its avatar.
"""

from crm.selectors.contacts import contact_names, contact_row
from crm.selectors.count import Count, contact_count
from crm.selectors.db import fetch_rows
from crm.selectors.facts import resolve_patterns, resolve_search
from crm.selectors.indexes import has_index
from crm.selectors.pages import Page, RowSerialiser, contact_page, page_order, page_sql
from crm.selectors.rank import resolve_rank

__all__ = [
    "Count",
    "Page",
    "RowSerialiser",
    "contact_count",
    "contact_names",
    "contact_page",
    "contact_row",
    "fetch_rows",
    "has_index",
    "page_order",
    "page_sql",
    "resolve_patterns",
    "resolve_rank",
    "resolve_search",
]
