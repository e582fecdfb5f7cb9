-- Schema version 19 on PostgreSQL: `posts.fts` names each column in its lexemes, not only by weight.
-- Version 1 told the columns apart by weights alone (words A, stems B, tags C) and queries asked for
-- 'санкц':B; but GIN keeps no weights, so every candidate the index gave had to be rechecked against
-- its tsvector (read from TOAST) — what set search p95 at 1M posts (README, Benchmarks). Now stems are
-- stored as '~санкц' and hashtags as '#арктика' (chanwatch's tokens are letters and digits only, so
-- no word can take either form), and queries name lexemes without weights: GIN answers words,
-- prefixes, AND, OR and NOT exactly; only phrases still recheck positions. The weights stay, for
-- ts_rank (`sort:rank` ranks as before).
--
-- The vector is built from chanwatch's own tokens (split on spaces, as SQLite's ascii tokenizer sees
-- them) rather than through the text-search parser, and queries are cast to tsquery rather than
-- parsed by to_tsquery, so both sides see exactly the tokens storage/text.py made. A token too long
-- for a lexeme (2 KiB) is left out, as to_tsvector left it out.
--
-- Each vector also holds its post's bucket, `$` and id / 100000 (storage.dialect.FTS_BUCKET): '$7'
-- for posts 700000-799999. GIN builds the bitmap of *every* match before a count's first row, so
-- counting up to 5,000 posts of a frequent word cost what all its matches cost (160-190 ms at 10M
-- posts); `'~sanction' & '$7'` makes GIN intersect inside the index, and storage.search counts the
-- newest buckets first, stopping at the cap (a few ms each).
CREATE FUNCTION posts_fts_tokens(tokens TEXT, marker TEXT, weight "char") RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(coalesce(string_agg(
               '''' || replace(replace(marker || t.token, '\', '\\'), '''', '''''') || ''':' || t.n, ' '),
           '')::tsvector, weight)
    FROM unnest(string_to_array(coalesce(tokens, ''), ' ')) WITH ORDINALITY AS t(token, n)
    WHERE t.token <> '' AND octet_length(marker || t.token) < 2048
$$;

-- A post's whole vector: its columns, marked and weighted, and its bucket.
CREATE FUNCTION posts_fts_of(id BIGINT, words TEXT, stems TEXT, tags TEXT) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT posts_fts_tokens(words, '', 'A') || posts_fts_tokens(stems, '~', 'B')
           || posts_fts_tokens(tags, '#', 'C') || array_to_tsvector(ARRAY['$' || (id / 100000)])
$$;

CREATE OR REPLACE FUNCTION posts_fts_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.fts := posts_fts_of(NEW.id, NEW.words, NEW.stems, NEW.tags);  -- NEW.id: the identity is set by now
    RETURN NEW;
END
$$;

UPDATE posts SET fts = posts_fts_of(id, words, stems, tags);
