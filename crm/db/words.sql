-- crm_word: the words of the names and places in the read model, which a search that finds
-- (almost) nothing is offered instead (crm/selectors/suggestions.py): "Did you mean Schmidt?"
-- A table of its own because the read model holds 3M rows of a few thousand distinct words,
-- and a similarity search over the rows' trigram indexes read every row of every similar
-- name. A word is added when a row with it is written and never removed (a contact's name
-- can change back); a suggestion is checked against the rows before it is offered.
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

CREATE TABLE IF NOT EXISTS crm_word (
    -- crm_sort_letters(word): spellings that sort alike are one word (Müller, MÜLLER,
    -- Mueller); a ranked search finds a name's rows as a range of its sort key
    -- (selectors/ranked.py). No unique constraint: writers that add the same new word at
    -- once would wait for each other's commit while holding the read rows they wrote, and
    -- deadlock (tests/test_readmodel_concurrency.py: 22 of 200 rounds). A race may store a
    -- word twice, which the readers group away.
    letters text COLLATE "C" NOT NULL,
    word text NOT NULL,  -- as first written
    folded text NOT NULL,  -- crm_fold(word), as search_text has it
    sound text NOT NULL  -- dmetaphone(folded): Meier, Maier, Mayer and Meyer are all MR
);
-- a word within a typo or two of the term: similarity() (pg_trgm) narrows, levenshtein()
-- decides; the trigram index also answers whether a term is in some word at all
CREATE INDEX IF NOT EXISTS crm_word_folded_trgm ON crm_word USING gin (folded gin_trgm_ops);
-- Without GIN's pending list: words and values are added rarely, a few at a time, or all at
-- once by crm_word_fill() (seeding, migrations), and a search reads the whole pending list
-- first. After migration 0021 added 14,600 postal codes to crm_value, its list made every
-- lookup of a term's values 9 ms on PostgreSQL 15 (0.2 ms once the list was merged),
-- until a VACUUM that autovacuum had not yet run.
ALTER INDEX crm_word_folded_trgm SET (fastupdate = off);
CREATE INDEX IF NOT EXISTS crm_word_sound ON crm_word USING btree (sound);
CREATE INDEX IF NOT EXISTS crm_word_letters ON crm_word USING btree (letters);
-- the word with two neighbouring letters of the term swapped (suggestions.py)
CREATE INDEX IF NOT EXISTS crm_word_folded ON crm_word USING btree (folded);

-- The words of a row: its names' and places' whitespace-separated parts of three letters or
-- more with a letter, without digits (`Straße des 17. Juni` gives Straße and Juni).
CREATE OR REPLACE FUNCTION crm_words(VARIADIC parts text[]) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT part FROM regexp_split_to_table(array_to_string(parts, ' '), '\s+') part
     WHERE length(part) >= 3 AND part !~ '[[:digit:]]' AND crm_sort_letters(part) <> ''
$$;

-- The words not yet known, of a row written (or of every row, crm_word_fill()).
CREATE OR REPLACE FUNCTION crm_word_add(words text[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crm_word (letters, word, folded, sound)
    SELECT DISTINCT ON (crm_sort_letters(w)) crm_sort_letters(w), w, crm_fold(w),
           dmetaphone(crm_fold(w))
      FROM unnest(words) w
     WHERE NOT EXISTS (SELECT 1 FROM crm_word k WHERE k.letters = crm_sort_letters(w))
     ORDER BY crm_sort_letters(w), w
$$;

-- crm_value: the distinct values of the same four columns and of the postal code, each with
-- its column (crm/fields.py VALUE_FIELDS). A substring filter on one of them is read as the
-- values it matches, found by the trigram index here, whose rows the (column, id) b-trees
-- give (crm/selectors/facts.py resolve_patterns). And the names and places give the
-- exact count of a search of one term (crm/selectors/count.py, crm/db/count.sql). A term
-- without whitespace is in a row's search_text exactly when it is in one of the searched
-- columns' folds (crm_search_text() joins them with spaces), so its matches are the rows
-- whose name or place is one of the values whose fold holds the term, a few index ranges of
-- the (column, id) b-trees read without the table, plus the rows whose customer id or phone
-- number holds it (their own trigram indexes). Counting them through search_text's trigram
-- index visits every match's table block: at 3M, `search=strauss` (6,812 matches) took
-- 48 ms on PostgreSQL 15 and 30 on the embedded server, the ranges 2-3 ms. Added as crm_word
-- is (never removed: a value without rows matches no row; a race may store one twice).
CREATE TABLE IF NOT EXISTS crm_value (
    field text COLLATE "C" NOT NULL,  -- the crm_contactrow column
    value text NOT NULL
);
-- the values whose fold holds a term (crm_fold() is what search_text folds)
CREATE INDEX IF NOT EXISTS crm_value_folded_trgm ON crm_value
    USING gin (crm_fold(value) gin_trgm_ops);
ALTER INDEX crm_value_folded_trgm SET (fastupdate = off);  -- as crm_word_folded_trgm
-- whether a value is known already (crm_value_add)
CREATE INDEX IF NOT EXISTS crm_value_field_value ON crm_value USING btree (field, value);

CREATE OR REPLACE FUNCTION crm_value_add(fields text[], vals text[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO crm_value (field, value)
    SELECT DISTINCT f, v FROM unnest(fields, vals) u(f, v)
     WHERE v IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM crm_value k WHERE k.field = f AND k.value = v)
$$;

-- Per row, and only for a row whose names or places are new or changed: a statement trigger
-- with a transition table ran on every points change too (588 changes/s became 317).
CREATE OR REPLACE FUNCTION crm_word_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_word_add(ARRAY(SELECT crm_words(NEW.first_name, NEW.last_name,
                                                NEW.address_street, NEW.address_city)));
    PERFORM crm_value_add(ARRAY['first_name', 'last_name', 'address_street', 'address_city',
                                'address_city_code'],
                          ARRAY[NEW.first_name, NEW.last_name, NEW.address_street,
                                NEW.address_city, NEW.address_city_code]);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS crm_word_insert ON crm_contactrow;
CREATE TRIGGER crm_word_insert AFTER INSERT ON crm_contactrow
    FOR EACH ROW EXECUTE FUNCTION crm_word_sync();
DROP TRIGGER IF EXISTS crm_word_update ON crm_contactrow;
CREATE TRIGGER crm_word_update
    AFTER UPDATE OF first_name, last_name, address_street, address_city, address_city_code
    ON crm_contactrow FOR EACH ROW
    WHEN ((OLD.first_name, OLD.last_name, OLD.address_street, OLD.address_city,
           OLD.address_city_code)
          IS DISTINCT FROM (NEW.first_name, NEW.last_name, NEW.address_street, NEW.address_city,
                            NEW.address_city_code))
    EXECUTE FUNCTION crm_word_sync();

-- Every word and value of the read model, after a bulk load that ran without the triggers
-- (seeding): from the distinct values, a few thousand, not from 3M rows.
CREATE OR REPLACE FUNCTION crm_word_fill() RETURNS void LANGUAGE sql AS $$
    WITH v(field, value) AS MATERIALIZED (
        SELECT 'first_name', first_name FROM crm_contactrow GROUP BY 2
        UNION ALL SELECT 'last_name', last_name FROM crm_contactrow GROUP BY 2
        UNION ALL SELECT 'address_street', address_street FROM crm_contactrow GROUP BY 2
        UNION ALL SELECT 'address_city', address_city FROM crm_contactrow GROUP BY 2
        UNION ALL SELECT 'address_city_code', address_city_code FROM crm_contactrow GROUP BY 2)
    SELECT crm_word_add(ARRAY(SELECT DISTINCT w FROM v, crm_words(value) w
                               WHERE field <> 'address_city_code')),
           crm_value_add(ARRAY(SELECT field FROM v), ARRAY(SELECT value FROM v))
$$;
