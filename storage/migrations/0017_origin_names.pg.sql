-- Schema version 17 on PostgreSQL: `from:` by an origin's title. SQLite compares `chanwatch_name(
-- origin_title)`, a Python function (storage.query.name_key: the title's folded words); PostgreSQL runs
-- no Python in SQL, so each distinct origin title has its name here, computed by the same Python.
-- The trigger lists every title written to `posts`, whoever writes it (ingest, imports, a copy of the
-- archive), with `name` NULL; Python fills the names (storage.origin_names.name_titles: after each
-- ingest, and before a search on a writable connection). One row per distinct title: a few thousand.
CREATE TABLE origin_names (
    title TEXT PRIMARY KEY,
    name  TEXT                              -- name_key(title); NULL until Python has computed it
);
CREATE INDEX origin_names_name ON origin_names (name);
CREATE INDEX origin_names_pending ON origin_names (title) WHERE name IS NULL;

CREATE FUNCTION origin_names_listed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO origin_names (title) VALUES (NEW.origin_title) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER origin_names_listed AFTER INSERT OR UPDATE OF origin_title ON posts
    FOR EACH ROW WHEN (NEW.origin_title IS NOT NULL) EXECUTE FUNCTION origin_names_listed();

INSERT INTO origin_names (title)
    SELECT DISTINCT origin_title FROM posts WHERE origin_title IS NOT NULL ON CONFLICT DO NOTHING;
