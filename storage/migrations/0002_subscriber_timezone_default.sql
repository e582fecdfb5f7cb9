-- Schema version 2: a subscriber's time zone is NULL unless the chat chose one, so that
-- CHANWATCH_TIMEZONE applies to every chat that did not. Version 1 stored 'UTC' by default, which
-- hid the setting; no version-1 command could choose a zone, so every 'UTC' there is that default.
ALTER TABLE subscribers ADD COLUMN zone TEXT;
UPDATE subscribers SET zone = timezone WHERE timezone != 'UTC';
ALTER TABLE subscribers DROP COLUMN timezone;
ALTER TABLE subscribers RENAME COLUMN zone TO timezone;
