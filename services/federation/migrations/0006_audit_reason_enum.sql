-- Contract v1: an audit record's reason is one of annals.federation.v1.AuditReason,
-- stored as the value's name in lowercase without its prefix (`pull_refused`);
-- the free text that used to be the reason is its message.

alter table audit add column message text not null default '';

-- Existing rows map by the prefix of their old reason text. A refusal keeps its
-- ErrorInfo reason in the message ("PEER_UNKNOWN: no peer … is registered here");
-- the other kinds drop the prefix that the reason column now says.
update audit set
  message = case
    when reason ~ '^(ENTRY_REJECTED|PEER_CERT_REFUSED|RESET|REFUSALS_AGGREGATED): ' then regexp_replace(reason, '^[A-Z_]+: ', '')
    else reason
  end,
  reason = case
    when reason like 'ENTRY_REJECTED: %' then
      case
        when reason ~ 'seqs [0-9]+\.\.[0-9]+ are missing' then 'seq_gap'
        when reason ~ '(payload_digest|checksum)$' or reason ~ '(payload_digest|checksum), ' then 'checksum_mismatch'
        when reason ~ 'link$' then 'broken_link'
        else 'checksum_mismatch'
      end
    when reason like 'PEER_CERT_REFUSED: %' or reason like 'PEER_CERT_MISMATCH: %' then 'certificate_mismatch'
    when reason like 'RESET: %' then 'reset'
    when reason like 'REFUSALS_AGGREGATED: %' then 'refusals_aggregated'
    else 'pull_refused'
  end;

alter table audit add constraint audit_reason_known check (
  reason in ('checksum_mismatch', 'broken_link', 'seq_gap', 'certificate_mismatch', 'pull_refused', 'reset', 'refusals_aggregated')
);
