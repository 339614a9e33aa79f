-- Idempotency keys are scoped to merchant + method + path: the stored key is
-- "<METHOD> <escaped path> <merchant's key>". Every record so far was a
-- create's.
UPDATE idempotency SET key = 'POST /v1/payments ' || key;

-- payments.reference_free: 1 when the payment failed without any provider
-- having accepted an attempt (Payment.ReferenceReusable), so the merchant
-- may use its reference again. The reference is unique among the others.
ALTER TABLE payments ADD COLUMN reference_free integer NOT NULL DEFAULT 0;
UPDATE payments SET reference_free = 1
WHERE status = 'failed'
  AND data->'failure'->>'code' IN ('provider_unavailable', 'no_route')
  AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.payment_id = payments.id
      AND (a.provider_payment_id <> ''
           OR NOT (a.status = 'skipped' OR (a.status = 'failed' AND a.error_class IN ('unavailable', 'invalid')))));
DROP INDEX payments_merchant_reference_key;
-- The store maps a violation of this index (and only this one) to
-- store.ErrDuplicateReference.
CREATE UNIQUE INDEX payments_merchant_reference_key ON payments (merchant_id, reference)
    WHERE reference <> '' AND reference_free = 0;
