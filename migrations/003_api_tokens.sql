-- API tokens (issue 10 and the reliability issue): one bearer-token mechanism
-- for the REST API, template registration, /metrics and the dashboard.
-- Only a SHA-256 of each token is stored: a token is 32 random bytes, so a
-- slow password hash would add nothing but latency to every request.
-- `weft token create|list|revoke` manage the rows. While no row is live
-- (revoked_at IS NULL) the API runs open, on loopback only.
CREATE TABLE weft.api_tokens (
  id           uuid        PRIMARY KEY,
  name         text        NOT NULL,
  scopes       text[]      NOT NULL
               CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin']::text[]),
  token_hash   text        NOT NULL UNIQUE,
  -- the first characters of the token, so a person can tell tokens apart in `weft token list`
  prefix       text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
-- A name is unique among live tokens; a revoked token's name may be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON weft.api_tokens (name) WHERE revoked_at IS NULL;
