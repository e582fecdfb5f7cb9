-- Schema version 3: /status counts the posts archived today; without this index that count read
-- every post (0.9 s on a million-message archive, on the thread the poller also writes through).
CREATE INDEX posts_first_seen ON posts (first_seen);
