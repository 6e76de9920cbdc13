-- The instance-wide cap on confirmation mails ([public] confirmations_per_hour) counts the
-- confirmations queued in the last hour at every sign-up; this keeps that count to the
-- recent confirmation rows instead of a scan of every delivery ever made.
CREATE INDEX deliveries_confirm_created ON deliveries (created_at) WHERE kind = 'confirm';
