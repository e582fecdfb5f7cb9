-- Schema version 17 (numbered after 0016, another branch's step): `from:` by an origin's title on
-- PostgreSQL. Nothing changes on SQLite, which compares titles by the Python function
-- `chanwatch_name` (storage.search.register_functions); 0017_origin_names.pg.sql has the table
-- PostgreSQL reads instead.
SELECT 1;
