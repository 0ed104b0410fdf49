-- This node's signing key when no key file is configured: generated on first
-- start and kept here, so that peers that registered its public key keep
-- accepting its tokens across restarts. Production sets ANNALS_FEDERATION_KEY_FILE.
create table identity (
  -- Always true: the table holds at most one row.
  only_row    boolean primary key default true check (only_row),
  private_jwk jsonb not null,
  created_at  timestamptz not null default now()
);
