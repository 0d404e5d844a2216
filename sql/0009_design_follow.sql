-- 0009_design_follow.sql - the V0 follow-up is durable work of ideaforge-agentd (issue 16 item
-- 3; app/design.c, app/agentd.c).
--
-- Applied by `ideaforgectl migrate` in its own transaction (no transaction control here).
--
-- A design_mockups row in_progress with a V0 chat and follow_until set is followed by any
-- agentd, whoever asked and whether or not a client asks: the row itself is the job. An agentd
-- claims the rows whose next_check_at has come (FOR UPDATE SKIP LOCKED, so two agentds never
-- claim the same row) by moving next_check_at past the longest call: that new value is the
-- claim (the lease). It asks V0, then records the outcome only if the row still holds its
-- claim, and sets the next check (design_poll_s, or a back-off after a failure). An agentd
-- killed during a check leaves a claim that runs out by itself; the row is then due again.
-- check_failures: V0 failures in a row (429, 5xx, no answer), for the back-off; 0 after an
-- answer.
ALTER TABLE design_mockups
  ADD COLUMN next_check_at  timestamptz,
  ADD COLUMN check_failures integer NOT NULL DEFAULT 0;

-- generations in progress before this migration: due at once
UPDATE design_mockups SET next_check_at = now()
  WHERE project_status = 'in_progress' AND v0_chat_id IS NOT NULL AND follow_until IS NOT NULL;

-- the claim: the due rows first
CREATE INDEX design_mockups_next_check_idx ON design_mockups (next_check_at)
  WHERE project_status = 'in_progress' AND v0_chat_id IS NOT NULL;
