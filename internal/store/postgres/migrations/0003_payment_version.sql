-- payments.version: bumped by every save of the payment, so that a writer
-- holding a fresh copy can save it without reloading it (the UPDATE checks
-- the version it read; a concurrent save makes it reload). Existing rows
-- start at 1; 0 is never stored (it means "not read from the store").
ALTER TABLE payments ADD COLUMN version bigint NOT NULL DEFAULT 1;
