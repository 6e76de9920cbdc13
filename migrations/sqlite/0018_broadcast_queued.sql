-- After each batch of a broadcast's mail the sender asks whether any of its mail is still
-- queued (broadcasts::finish_if_done). With only (broadcast_id, subscriber_id) to go by,
-- that question walked past every mail of the broadcast already sent: about N/2 index
-- entries a batch, N²/400 over a broadcast of N. This index holds only the queued ones.
CREATE INDEX deliveries_broadcast_queued ON deliveries (broadcast_id) WHERE status = 'queued' AND broadcast_id IS NOT NULL;
