-- Binary payloads (contract v1): an entry's payload is either JSON (payload)
-- or bytes (binary_payload, with its media type in content_type). Redaction
-- erases either; content_type stays, because the checksum covers it.
alter table entries add column content_type text;
alter table entries add column binary_payload bytea;
