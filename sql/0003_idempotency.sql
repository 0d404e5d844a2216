-- 0003_idempotency.sql - Idempotency-Key of the create routes (issue 9 item 8; app/idem.c).
--
-- Applied by `ideaforgectl migrate` in its own transaction (no transaction control here).
-- Independent of 0002 (the per-route body caps and search index of issue 9 items 1-4): on a
-- fresh database the runner applies 0001, 0002, 0003 in version order.
--
-- One row per (user, "METHOD /route/pattern", key). app/idem.c inserts the row in the same
-- transaction as the handler's writes and stores the 2xx response on it before COMMIT, so a
-- recorded key always names a committed write, and a write always has its key. Rows older than
-- 24 hours are expired: the next request of that user purges them, and an expired key is reused
-- as a new one.

CREATE TABLE idempotency_keys (
  user_id      uuid NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE,
  route        text NOT NULL CHECK (length(route) <= 160),    -- "POST /api/products"
  key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint  text NOT NULL CHECK (length(fingerprint) = 64), -- hex SHA-256 of path + body
  status       integer CHECK (status BETWEEN 200 AND 299),     -- NULL until the first answer
  body         text,                                           -- that answer's JSON body
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, route, key)
);

-- the per-user purge of expired keys
CREATE INDEX idempotency_keys_user_created_idx ON idempotency_keys (user_id, created_at);
