-- Schema version 19: PostgreSQL's search vector names each column in its lexemes
-- (0019_fts_marked_lexemes.pg.sql). Nothing changes on SQLite, whose FTS5 table has real columns.
SELECT 1;
