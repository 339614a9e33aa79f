-- inbox.attempts / inbox.next_at: an item whose notification could not be
-- confirmed yet (or applied: the provider was unreachable) stays pending
-- and is checked again at next_at, with a growing delay. NULL next_at is
-- due now.
ALTER TABLE inbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN next_at timestamptz;
-- No secret reaches a table: earlier versions kept Xendit's
-- X-Callback-Token (the only thing authenticating its webhooks) with the
-- signature headers.
UPDATE inbox SET headers = ((headers::jsonb) - 'X-Callback-Token' - 'Authorization')::text
WHERE headers LIKE '%X-Callback-Token%' OR headers LIKE '%Authorization%';
