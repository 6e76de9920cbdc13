-- The retention sweep ([privacy] raw_retention_days) looks for old raw messages among those
-- still kept; without this index it would scan every old reply again at each sweep.

CREATE INDEX replies_raw_kept ON replies (received_at) WHERE raw IS NOT NULL;
