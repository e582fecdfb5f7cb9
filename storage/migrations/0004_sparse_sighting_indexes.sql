-- Schema version 4: `is:deleted` and `is:copy` list their posts from these partial indexes, which hold
-- only deleted and copied sightings (few), instead of checking every post's sightings one by one
-- (3.8 s and 1.8 s on a million-message archive). Ingest writes to them only for such rows.
CREATE INDEX messages_deleted ON messages (post_id) WHERE deleted_at IS NOT NULL;
CREATE INDEX messages_copies ON messages (post_id) WHERE relation = 'copy';
