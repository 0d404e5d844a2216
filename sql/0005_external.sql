-- 0005_external.sql - single sign-on (OpenID Connect) and the V0 design follow-up (issue 16;
-- app/h_oidc.c, app/h_design.c).
--
-- Applied by `ideaforgectl migrate` in its own transaction (no transaction control here).

-- A user's identity at an OpenID provider: matched by issuer + subject (OpenID Connect Core
-- 1.0 section 5.7: the only stable, unique pair; an email address can change hands). The
-- refresh token is sealed (app/keys.h, AES-256-GCM bound to "<user id>/oidc").
CREATE TABLE user_identities (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  issuer               text NOT NULL,
  subject              text NOT NULL,
  user_id              uuid NOT NULL,
  tenant_id            uuid NOT NULL,
  email                text,
  refresh_token_sealed text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  last_login_at        timestamptz,
  CONSTRAINT user_identities_issuer_subject_key UNIQUE (issuer, subject),
  CONSTRAINT user_identities_user_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT user_identities_lengths_check
    CHECK (length(issuer) BETWEEN 1 AND 1024 AND length(subject) BETWEEN 1 AND 255)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);
CREATE TRIGGER user_identities_updated_at BEFORE UPDATE ON user_identities
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One authorization request in flight (state, nonce, PKCE verifier): written by
-- /api/auth/oidc/authorize, consumed exactly once by the callback (DELETE ... RETURNING), so a
-- replayed state finds nothing. Only a hash of the state is stored. Rows older than their
-- expiry are useless and deleted by the next authorize.
CREATE TABLE oidc_logins (
  state_hash    text PRIMARY KEY,
  nonce         text NOT NULL,
  code_verifier text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expires_idx ON oidc_logins (expires_at);

-- V0 progress is followed by a durable job (ideaforge-agentd), not by a loop in the process
-- that asked: a mockup row in_progress with follow_until in the future is work to do.
-- status_checked_at: the last time V0 was asked; status_checks: how many times.
ALTER TABLE design_mockups
  ADD COLUMN follow_until      timestamptz,
  ADD COLUMN status_checked_at timestamptz,
  ADD COLUMN status_checks     integer NOT NULL DEFAULT 0;
CREATE INDEX design_mockups_follow_idx ON design_mockups (follow_until)
  WHERE project_status IN ('pending', 'in_progress');
