-- The federation service's peer registry: who we pull from and who may pull from us.
create table peers (
  -- SPIFFE-style URI, e.g. spiffe://acme.example/annals/eu-1.
  node_id      text primary key,
  -- The peer's gRPC endpoint, e.g. https://annals.eu-1.acme.example:50051.
  url          text not null,
  -- The peer's public key (JWK JSON); verifies the tokens it signs to pull from us.
  public_key   jsonb not null,
  -- Logs this peer may pull from us.
  served_logs  text[] not null default '{}',
  -- Logs we pull from this peer into local mirrors.
  mirrored_logs text[] not null default '{}',
  status       text not null default 'active' check (status in ('active', 'disabled')),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);
