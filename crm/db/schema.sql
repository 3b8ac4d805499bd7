-- The read model's helpers: extensions, folding functions, casts and the case-variant table.
-- (The tables themselves are Django models, crm/models.py; crm_contactrow's sync triggers are in
-- contactrow_sync.sql, its indexes and statistics in indexes.sql, the count in count.sql.)

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- The one definition of "searchable text": lower-cased, accents removed, fields joined by
-- a space (search terms never contain whitespace, so a term cannot match across fields).
CREATE OR REPLACE FUNCTION crm_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, value));

-- A search term as a regular expression over folded text, so that the ways German-speaking
-- staff spell one name are one word: `ä/ae`, `ö/oe`, `ü/ue` (and `ø/oe`, `æ/ae`, `å/aa`,
-- whose single letters crm_fold() makes a, o, u, ae) and `ß/ss` (folded to ss). The term's
-- digraphs collapse (`mueller` -> `muller`, `aalborg` -> `alborg`), every other character is
-- matched literally (escaped), and after each a, o and u an `e` (after a also an `a`) may
-- follow: `muller`, `mueller`, `müller` and `MÜLLER` all become `mue?lle?r`, which finds
-- both Müller (folded `muller`) and Mueller. Decision: `u` alone is the same letter as `ue`,
-- so `muller` finds Mueller too, and `Manuel` finds `Manul` (harmless). The pattern always
-- matches the term as typed, and the stored text keeps every letter, so no match is lost
-- (`eller` still finds Mueller) and substring filters (`icontains`) stay literal.
CREATE OR REPLACE FUNCTION crm_search_pattern(term text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN regexp_replace(regexp_replace(regexp_replace(
               regexp_replace(crm_fold(term), '([aou])e|(a)a', '\1\2', 'g'),
               '([^[:alnum:]])', '\\\1', 'g'),
           '([ou])', '\1e?', 'g'), 'a', 'a[ae]?', 'g');

-- A search term tested row by row (crm/sql.py search_sql: a term without a trigram, or one
-- that the other conditions narrow far more): regexp_like() is priced as one operator, the
-- cost of an equality, where it takes some 0.7 us a row on search_text, so PostgreSQL tested
-- it before cheaper filters on every row those would have rejected (`gender__contains=M&
-- relationship__created__day=11&search=am`: the term on 1.46 million men, then the day, 1.4 s
-- at 3M on PostgreSQL 15; the day first, 0.6 s). Its cost here puts it after them. A
-- PL/pgSQL function is never inlined, so the cost stays its own (the call adds about 0.2 us).
CREATE OR REPLACE FUNCTION crm_holds(folded text, pattern text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT COST 100 AS $$
BEGIN
    RETURN folded ~ pattern;
END $$;

-- The same spellings written out, as LIKE patterns (`mueller`: %muller% and %mueller%), or
-- NULL when there are more than 16 (each a, o and u doubles or triples them). Searches use
-- these where there are few (crm/sql.py fold_contains_sql): the planner estimates LIKE ANY
-- element by element from the trigram statistics, and a row is rechecked by LIKE, where it
-- estimated a regular expression with optional letters far off (a capped count of two
-- such terms and a range filter took 8-9 s at 3M) and rechecked each row at about twice
-- the cost (`search=koenig`'s 11,450 matches: 99 ms, 40 ms with LIKE ANY).
CREATE OR REPLACE FUNCTION crm_search_spellings(term text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
DECLARE
    spellings text[] := ARRAY['%'];
    longer text[];
    letter text;
    spelling text;
    way text;
BEGIN
    FOREACH letter IN ARRAY regexp_split_to_array(
            regexp_replace(crm_fold(term), '([aou])e|(a)a', '\1\2', 'g'), '') LOOP
        longer := '{}';
        FOREACH spelling IN ARRAY spellings LOOP
            FOREACH way IN ARRAY CASE letter WHEN 'a' THEN '{a,aa,ae}'::text[]
                                             WHEN 'o' THEN '{o,oe}' WHEN 'u' THEN '{u,ue}'
                                             WHEN '%' THEN '{\\%}' WHEN '_' THEN '{\\_}'
                                             WHEN '\' THEN '{\\\\}' ELSE ARRAY[letter] END LOOP
                longer := longer || (spelling || way);
            END LOOP;
        END LOOP;
        IF cardinality(longer) > 16 THEN
            RETURN NULL;
        END IF;
        spellings := longer;
    END LOOP;
    RETURN ARRAY(SELECT s || '%' FROM unnest(spellings) s);
END $$;

CREATE OR REPLACE FUNCTION crm_search_text(VARIADIC parts text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN crm_fold(array_to_string(parts, ' '));

-- Dictionary order for names and places, as a German phone book sorts them (DIN 5007-2):
-- case and accents do not count, ä/ö/ü are ae/oe/ue (Müller among the Mue..., beside
-- Mueller), ß is ss, and spaces and punctuation are skipped (`de Vries` among the D's, by its
-- letters). crm_sort_letters() is that form. It works one character at a time, from the
-- character's upper(), so a case-insensitive prefix of a name (`istartswith`) gives a prefix
-- of its letters, a range of the key's index (tests/test_sort_keys.py checks every one).
-- crm_sort_key() appends the value itself after U+0001, which sorts before any letter: equal
-- letters fall back to the exact value (by code point), and the key is one-to-one, so
-- `last_name = v` is `last_name_key = crm_sort_key(v)` (crm/params.py).
CREATE OR REPLACE FUNCTION crm_sort_letters(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN regexp_replace(
        lower(public.unaccent('public.unaccent'::regdictionary,
            replace(replace(replace(lower(upper(value)), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'))),
        '[\u0001-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u007f\u00a0-\u00bf\u2000-\u206f\u3000-\u303f]',
        '', 'g');

CREATE OR REPLACE FUNCTION crm_sort_key(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN crm_sort_letters(value) || chr(1) || value;

-- The keys of several values at once (crm/sql.py Binder.array): immutable, so the planner
-- folds the keys of a constant array into one.
CREATE OR REPLACE FUNCTION crm_sort_keys(val text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN ARRAY(SELECT crm_sort_key(v) FROM unnest(val) v);

-- The end of the range of keys that start with the letters `prefix` (a name's case-
-- insensitive prefix, crm/sql.py), and of the upper() of names that start with an upper()
-- prefix: the prefix with its last character's successor, since both sort by code point
-- (U+E000 after U+D7FF: UTF-8 encodes no surrogate); NULL where there is none (no letters,
-- or U+10FFFF last), and the range then has no end. A range, not `LIKE prefix || '%'`: the
-- planner reads ranges of the name, its key and its upper() from their extended statistics
-- (indexes.sql), where it multiplied LIKE's selectivity by the others'.
CREATE OR REPLACE FUNCTION crm_prefix_end(prefix text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN CASE WHEN prefix <> '' AND ascii(right(prefix, 1)) <> 1114111
                THEN left(prefix, -1) || chr(CASE ascii(right(prefix, 1)) WHEN 55295 THEN 57344
                                             ELSE ascii(right(prefix, 1)) + 1 END) END;

-- The value that a key ends with (a search sorted by the key tests it once per distinct key).
CREATE OR REPLACE FUNCTION crm_sort_value(key text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN substr(key, strpos(key, chr(1)) + 1);

-- The sort keys of the fields sorted in dictionary order (crm/fields.py SORT_KEYS), kept by
-- PostgreSQL itself on every write to the read row: a trigger computes them whenever a name
-- or a key changes (so a key written by hand is put right too). They were generated columns
-- until the seed measured what that cost: a generated column is computed by the one
-- inserting session, row by row, 27 us a row for the four (77 of the 105 s that 3M rows
-- took); the seed, which runs with the triggers off, writes them from its few distinct names
-- (crm/seeding.py). Byte order ("C") is the order described above: the letters are ASCII
-- wherever the name is Latin.
ALTER TABLE crm_contactrow
    ADD COLUMN IF NOT EXISTS first_name_key text COLLATE "C",
    ADD COLUMN IF NOT EXISTS last_name_key text COLLATE "C",
    ADD COLUMN IF NOT EXISTS address_street_key text COLLATE "C",
    ADD COLUMN IF NOT EXISTS address_city_key text COLLATE "C";
-- (a database from before migration 0017 has them generated: plain columns now, their
-- values kept; a BEFORE trigger's WHEN may not name a generated column)
ALTER TABLE crm_contactrow
    ALTER COLUMN first_name_key DROP EXPRESSION IF EXISTS,
    ALTER COLUMN last_name_key DROP EXPRESSION IF EXISTS,
    ALTER COLUMN address_street_key DROP EXPRESSION IF EXISTS,
    ALTER COLUMN address_city_key DROP EXPRESSION IF EXISTS;

CREATE OR REPLACE FUNCTION crm_contactrow_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.first_name_key := crm_sort_key(NEW.first_name);
    NEW.last_name_key := crm_sort_key(NEW.last_name);
    NEW.address_street_key := crm_sort_key(NEW.address_street);
    NEW.address_city_key := crm_sort_key(NEW.address_city);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS crm_contactrow_keys_insert ON crm_contactrow;
CREATE TRIGGER crm_contactrow_keys_insert BEFORE INSERT ON crm_contactrow
    FOR EACH ROW EXECUTE FUNCTION crm_contactrow_keys();
-- Not on the points changes, which write only the relationship's columns.
DROP TRIGGER IF EXISTS crm_contactrow_keys_update ON crm_contactrow;
CREATE TRIGGER crm_contactrow_keys_update BEFORE UPDATE ON crm_contactrow FOR EACH ROW
    WHEN ((OLD.first_name, OLD.last_name, OLD.address_street, OLD.address_city,
           OLD.first_name_key, OLD.last_name_key, OLD.address_street_key, OLD.address_city_key)
          IS DISTINCT FROM
          (NEW.first_name, NEW.last_name, NEW.address_street, NEW.address_city,
           NEW.first_name_key, NEW.last_name_key, NEW.address_street_key, NEW.address_city_key))
    EXECUTE FUNCTION crm_contactrow_keys();

-- Filter values arrive in crm_count() as text and were cast per row: `($1[1])::timestamptz`
-- parses the text once for every sampled row, since that cast is only stable. These are
-- declared immutable, so the planner folds them into constants once (a date filter's
-- sample: 6.4-7.0 ms before, 1.9-2.3 ms after, at 3M). Safe to fold: the texts are ISO 8601
-- written by crm/sql.py `_as_text`, with a UTC offset on timestamps, and every statement
-- that uses them is planned afresh in the session that runs it.
CREATE OR REPLACE FUNCTION crm_timestamptz(value text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT value::timestamptz';
CREATE OR REPLACE FUNCTION crm_date(value text) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT value::date';

-- crm_case_variant: for every character that PostgreSQL's upper() maps to the same
-- character as another, all of them (`i` -> {I, i, ı}, `Ü` -> {Ü, ü}), as this database's
-- ctype sees them; a character not in the table has no variant but itself.
-- A case-insensitive prefix (`last_name__istartswith=mü`, `__iexact`) is no range of the
-- column's index, so a page sorted by that column walked the index from its start, past every
-- name before the M's (1-2.8 s at 3M). Its case variants (`MÜ`, `Mü`, `mÜ`, `mü`) are ranges,
-- read one after another in sort order (crm/case_variants.py). The table is computed here, by
-- the same upper() that the filter uses, so that no variant can be missed (0.4 s, once).
CREATE TABLE IF NOT EXISTS crm_case_variant (char text PRIMARY KEY, variants text[] NOT NULL);
INSERT INTO crm_case_variant
SELECT char, variants
  FROM (SELECT array_agg(chr(c) ORDER BY c) AS variants
          FROM generate_series(1, 1114111) c
         WHERE c NOT BETWEEN 55296 AND 57343  -- surrogates are no characters
         GROUP BY upper(chr(c)) HAVING count(*) > 1) same_upper,
       unnest(variants) char
    ON CONFLICT (char) DO NOTHING;
