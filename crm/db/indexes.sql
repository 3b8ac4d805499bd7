-- Every index and extended statistics object of the read model crm_contactrow, each with the
-- queries that need it (crm/selectors/ builds them). Measured at 3M contacts. Written as
-- PostgreSQL prints them (pg_get_indexdef), so tests/test_database_objects.py can compare the
-- live database with this file. crm/fields.py derives ORDER_INDEXES (the multi-column
-- b-trees) from here.

-- (column, id) for every sortable column: `ORDER BY column, id LIMIT n` and each keyset
-- branch (`column = v AND id > x`, `column > v`) is one index range scan, in both directions
-- (the tie-break runs in the direction of the last key, crm/params.py, so no DESC index).
CREATE INDEX IF NOT EXISTS crm_contactrow_first_name_id ON crm_contactrow USING btree (first_name, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_last_name_id ON crm_contactrow USING btree (last_name, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_gender_id ON crm_contactrow USING btree (gender, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_customer_id_id ON crm_contactrow USING btree (customer_id, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_phone_number_id ON crm_contactrow USING btree (phone_number, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_created_id ON crm_contactrow USING btree (created, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_birthday_id ON crm_contactrow USING btree (birthday, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_last_updated_id ON crm_contactrow USING btree (last_updated, id);
-- also the read model's triggers: an address's change updates its contacts' rows
CREATE INDEX IF NOT EXISTS crm_contactrow_address_id_id ON crm_contactrow USING btree (address_id, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_street_id ON crm_contactrow USING btree (address_street, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_street_number_id ON crm_contactrow USING btree (address_street_number, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_city_code_id ON crm_contactrow USING btree (address_city_code, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_city_id ON crm_contactrow USING btree (address_city, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_country_id ON crm_contactrow USING btree (address_country, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_relationship_id_id ON crm_contactrow USING btree (relationship_id, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_relationship_points_id ON crm_contactrow USING btree (relationship_points, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_relationship_created_id ON crm_contactrow USING btree (relationship_created, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_relationship_last_activity_id ON crm_contactrow USING btree (relationship_last_activity, id);
-- The same for the dictionary order of names and places (crm_sort_key(), schema.sql), which
-- `ordering=last_name` uses; also an equality or a prefix of the name (crm/params.py
-- on_sort_keys). The plain columns' indexes above still serve their range filters and the
-- loose scans of their distinct values (crm/selectors/facts.py).
CREATE INDEX IF NOT EXISTS crm_contactrow_first_name_key_id ON crm_contactrow USING btree (first_name_key, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_last_name_key_id ON crm_contactrow USING btree (last_name_key, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_street_key_id ON crm_contactrow USING btree (address_street_key, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_address_city_key_id ON crm_contactrow USING btree (address_city_key, id);

-- `search`: terms are substrings anywhere in six fields, found by trigrams of their folded
-- text (crm_fold, schema.sql).
-- Every trigram index keeps a pending list of at most 256 kB (PostgreSQL's default: 4 MB).
-- Each write of a read row adds its trigrams to that list (GIN's fast update), and every
-- search reads the whole list: after 150,000 points changes at 3M the lists held 1-4 MB each
-- and `search=müller&ordering=last_name` took 18-19 ms instead of 5-8. With 256 kB the writer
-- that fills a list merges it into the index; the write load measured no slower (520
-- changes/s vs 508-600 with 4 MB, noise) and the search stays at 5.5-7.8 ms after 31,000
-- changes (docs/performance-notes.md).
CREATE INDEX IF NOT EXISTS crm_contactrow_search_trgm ON crm_contactrow USING gin (search_text gin_trgm_ops) WITH (gin_pending_list_limit='256');

-- The same for the two searched fields of near-unique values, which crm_value cannot hold
-- (crm/db/words.sql): a search sorted by a searched field (crm/selectors/ranges.py
-- `split_search_rows`) reads the rows whose key contains a term group by group from the
-- key's own index, and the rest, whose terms are all in other fields, from these and from
-- the names and places that crm_value says hold the term (`search=müller&ordering=last_name`
-- took 0.49 s through search_text's 373,000 candidates; for `müller` the rest is none: 0.2
-- ms); and a search's count by value (crm/sql.py search_count_sql). About 10 s of the seed
-- each, 80 MB.
CREATE INDEX IF NOT EXISTS crm_contactrow_customer_id_fold_trgm ON crm_contactrow USING gin (crm_fold((customer_id)::text) gin_trgm_ops) WITH (gin_pending_list_limit='256');
CREATE INDEX IF NOT EXISTS crm_contactrow_phone_number_fold_trgm ON crm_contactrow USING gin (crm_fold((phone_number)::text) gin_trgm_ops) WITH (gin_pending_list_limit='256');

-- No such index for the names, the places and the postal code: their few distinct values
-- are in crm_value, whose trigram index finds those that hold a term or a pattern, and their
-- rows are read by the (column, id) b-trees above (crm/selectors/facts.py resolve_patterns,
-- ranges.py). Their trigram indexes cost 39 s of the 3M seed (of 229) and five more GIN
-- insertions on every write of a row; the random survey used the names' and places' once
-- in 1,690 requests (seed 4242), the postal code's 35 times, for patterns that its values
-- answer now (`address__city_code__iendswith=457`: the codes that end so, whose rows its
-- b-tree counts without the table). What the names' and places' still gave is the
-- statistics of each fold, from which the planner estimates a search term's rows
-- (crm/sql.py anywhere_sql): these keep them.
CREATE STATISTICS IF NOT EXISTS crm_contactrow_fold_first_name ON crm_fold(first_name::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_fold_last_name ON crm_fold(last_name::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_fold_address_street ON crm_fold(address_street::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_fold_address_city ON crm_fold(address_city::text) FROM crm_contactrow;

-- A name's or a place's prefix is read as a range of its sort key's letters and a test of
-- the name (crm/sql.py): its own range (`last_name__startswith=Mü`) or upper()'s (`last_name__
-- istartswith=mü`), conditions on the same strings that the planner took for independent
-- ones: it multiplied their selectivities and expected 47,900 of the 373,000 rows whose last
-- name starts with Mü (180,000 of 727,000 cities that start with B; 3,833 of the 108,000
-- Fischers by the key and upper()), which sent counts and pages to plans for a few rows.
-- The most common combinations of each name, its key and its upper() tell it how they go
-- together: 372,700, 723,300 and 107,220 (PostgreSQL 15, 3M). (Not for a LIKE, which
-- extended statistics do not estimate: so upper()'s range, crm/sql.py _upper_prefix_sql.)
CREATE STATISTICS IF NOT EXISTS crm_contactrow_first_name_keys (mcv) ON first_name, first_name_key, upper(first_name::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_last_name_keys (mcv) ON last_name, last_name_key, upper(last_name::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_address_street_keys (mcv) ON address_street, address_street_key, upper(address_street::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_address_city_keys (mcv) ON address_city, address_city_key, upper(address_city::text) FROM crm_contactrow;

-- The name order, `ordering=last_name,first_name`, and `last_name=X&ordering=first_name`
-- after the equality (both by their sort keys): the 9,236 Aigners have German first names, late in the alphabet, so
-- the walk of the first-name index read 25,000 rows (33 ms; `last_name=Müller&ordering=
-- -first_name` 0.4 s). With it: 1.0 and 1.2 ms. About 4 s of the seed, 120 MB.
CREATE INDEX IF NOT EXISTS crm_contactrow_name_keys_id ON crm_contactrow USING btree (last_name_key, first_name_key, id);

-- The address order, `ordering=address__country,address__city`, and a country's contacts by
-- city: country and city are a hierarchy, so the first country's 323,000 contacts were
-- sorted by city (0.47 s), and a country's cities were found only after every other
-- country's in the city index (0.47 s). About 4 s of the seed, 90 MB.
CREATE INDEX IF NOT EXISTS crm_contactrow_country_city_key_id ON crm_contactrow USING btree (address_country, address_city_key, id);

-- A place's contacts sorted by a finer part of the address: the postal code and the phone
-- number's calling code follow the country and the city, so a place's contacts sit at one
-- end of the finer key's order: `address__country=AT&ordering=phone_number` walked every +1
-- to +42 number first, then sorted 323,000 Austrians (0.38 s), `address__city=Berlin&
-- ordering=address__city_code` sorted 398,000 (0.41 s), `address__country=DE&ordering=
-- phone_number` 1.0 s. About 2 s of the seed each, 90-130 MB.
CREATE INDEX IF NOT EXISTS crm_contactrow_country_phone_id ON crm_contactrow USING btree (address_country, phone_number, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_country_city_code_id ON crm_contactrow USING btree (address_country, address_city_code, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_city_key_phone_id ON crm_contactrow USING btree (address_city_key, phone_number, id);
CREATE INDEX IF NOT EXISTS crm_contactrow_city_key_city_code_id ON crm_contactrow USING btree (address_city_key, address_city_code, id);

-- The columns that follow the table's order (the ids, the address's and the relationship's,
-- all given out as contacts are created): a range of their values is a few ranges of the
-- table's blocks, which a BRIN index lists in a few kB. A range filter on one of them in
-- the order of another (`address__id__gt=1108116&created__range=...`, in id order) meets its
-- first match 1.1 million ids into the id index, and its fallback scanned the table (0.6-0.7
-- s at 3M); bounded by a probe of the filter's own index (crm/selectors/ranges.py
-- RowRanges._bound), the two ranges' block ranges ANDed give the page from 8,000 blocks
-- (73 ms). Of (column + 0), an expression no other statement writes (crm/sql.py
-- BLOCK_RANGE_COLUMNS): ANDed by the planner into another statement's exact bitmaps, a
-- BRIN bitmap made their pages lossy (`customer_id__icontains=385&address__id__lte=
-- 1703590&search=ringstraße`: 414,000 rows rechecked, 1.4 s). Under a second of the seed
-- each, 136 kB.
CREATE INDEX IF NOT EXISTS crm_contactrow_id_brin ON crm_contactrow USING brin (((id + 0))) WITH (pages_per_range='32');
CREATE INDEX IF NOT EXISTS crm_contactrow_address_id_brin ON crm_contactrow USING brin (((address_id + 0))) WITH (pages_per_range='32');
CREATE INDEX IF NOT EXISTS crm_contactrow_relationship_id_brin ON crm_contactrow USING brin (((relationship_id + 0))) WITH (pages_per_range='32');

-- One gender sorted by first name (`gender=F&ordering=first_name`), and `ordering=gender,
-- first_name`: first names follow the gender, so the next pages walked 12,000 men's rows
-- before the next woman (17-35 ms). About 2 s of the seed, 90 MB.
CREATE INDEX IF NOT EXISTS crm_contactrow_gender_first_name_key_id ON crm_contactrow USING btree (gender, first_name_key, id);

-- Birthdays by calendar day (`birthday__month=2&birthday__day=29`: a birthday greeting):
-- neither part alone is selective, so both the count and the page scanned the table (1.0 s
-- each, for 2,104 matches). With `id` last the two equalities are one range in id order.
-- About 2 s of the seed.
CREATE INDEX IF NOT EXISTS crm_contactrow_birthday_month_day_id ON crm_contactrow USING btree (EXTRACT(month FROM birthday), EXTRACT(day FROM birthday), id);

-- Statistics of date parts: without them the planner assumes 0.5% of rows match
-- `birthday__month=11` (15,000 instead of 250,000), which sent it into a 150 ms capped count.
CREATE STATISTICS IF NOT EXISTS crm_contactrow_birthday_parts ON EXTRACT(month FROM birthday), EXTRACT(day FROM birthday) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_birthday_year ON EXTRACT(year FROM birthday) FROM crm_contactrow;

-- The same for the timestamps' month and day, taken in UTC as the filters take them
-- (crm/sql.py; AT TIME ZONE makes the expression immutable, which statistics require):
-- `relationship__created__day=11` was 0.5% of the rows for the planner, 3.2% in truth, and
-- with two such guesses it expected 58 rows of 2.3 million and sorted them all after a scan
-- where its index would have given them in order (1.2 s at 3M).
CREATE STATISTICS IF NOT EXISTS crm_contactrow_created_parts ON EXTRACT(month FROM (created AT TIME ZONE 'UTC'::text)), EXTRACT(day FROM (created AT TIME ZONE 'UTC'::text)) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_last_updated_parts ON EXTRACT(month FROM (last_updated AT TIME ZONE 'UTC'::text)), EXTRACT(day FROM (last_updated AT TIME ZONE 'UTC'::text)) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_relationship_created_parts ON EXTRACT(month FROM (relationship_created AT TIME ZONE 'UTC'::text)), EXTRACT(day FROM (relationship_created AT TIME ZONE 'UTC'::text)) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_relationship_last_activity_parts ON EXTRACT(month FROM (relationship_last_activity AT TIME ZONE 'UTC'::text)), EXTRACT(day FROM (relationship_last_activity AT TIME ZONE 'UTC'::text)) FROM crm_contactrow;

-- Statistics of upper(column) for every text field, which the `i` lookups compare: without
-- them the planner guesses a fixed LIKE selectivity for `upper(last_name) LIKE '%MÜL%'`
-- (24,000 rows instead of 368,000), and crm_count() ran a 250-560 ms capped count; and
-- `phone_number__istartswith=+4&customer_id__istartswith=CU`, nearly every row, were 58
-- rows, sorted after a scan instead of read in order from the phone index (1.2 s at 3M).
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_first_name ON upper(first_name::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_last_name ON upper(last_name::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_gender ON upper(gender::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_customer_id ON upper(customer_id::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_phone_number ON upper(phone_number::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_address_street ON upper(address_street::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_address_street_number ON upper(address_street_number::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_address_city_code ON upper(address_city_code::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_address_city ON upper(address_city::text) FROM crm_contactrow;
CREATE STATISTICS IF NOT EXISTS crm_contactrow_upper_address_country ON upper(address_country::text) FROM crm_contactrow;
