-- 0004_agent_jobs.sql - the durable queue of agent work (ideaforge-agentd).
--
-- The API authenticates, validates and inserts a job; ideaforge-agentd claims it with
-- FOR UPDATE SKIP LOCKED, woken by NOTIFY agent_jobs (no polling loop), and holds a lease that
-- it renews while the job runs. A job whose lease ran out (its agentd died) is claimed again
-- by any agentd, until max_attempts; then it fails with a reason. Every read and write of a
-- job by the API carries its owner in the SQL: another user's job is "not found".
--
-- agent_job_events keeps the events a client must be able to receive again after a
-- reconnect or an agentd restart (progress, agent start/complete, interactions, errors,
-- complete), numbered per job. The tokens of a running attempt (agent_chunk) are streamed
-- from memory and not stored: a later attempt streams its own, after an "agent_reset" event.

CREATE TABLE agent_jobs (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL,
  user_id       uuid NOT NULL,
  product_id    uuid,
  kind          text NOT NULL,
  request       jsonb NOT NULL,
  state         text NOT NULL DEFAULT 'pending',
  progress      real NOT NULL DEFAULT 0,
  message       text NOT NULL DEFAULT 'Job queued for processing',
  attempts      integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL DEFAULT 3,
  lease_owner   text,
  lease_until   timestamptz,
  result        jsonb,
  error         text,
  saved         boolean NOT NULL DEFAULT false, -- answer written to conversation_history
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  completed_at  timestamptz,
  CONSTRAINT agent_jobs_user_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT agent_jobs_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT agent_jobs_kind_check CHECK (kind IN ('multi_agent', 'phase_form_help', 'agent')),
  CONSTRAINT agent_jobs_state_check
    CHECK (state IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  CONSTRAINT agent_jobs_request_check CHECK (jsonb_typeof(request) = 'object'),
  CONSTRAINT agent_jobs_progress_check CHECK (progress >= 0 AND progress <= 1),
  CONSTRAINT agent_jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1)
);
-- The claim: the oldest unfinished job first.
CREATE INDEX agent_jobs_open_idx ON agent_jobs (created_at) WHERE state IN ('pending', 'processing');
-- A user's jobs (the per-user cap, listings).
CREATE INDEX agent_jobs_user_idx ON agent_jobs (user_id, state);
CREATE INDEX agent_jobs_tenant_idx ON agent_jobs (tenant_id);

CREATE TABLE agent_job_events (
  job_id     uuid NOT NULL REFERENCES agent_jobs (id) ON DELETE CASCADE,
  seq        bigint NOT NULL,
  attempt    integer NOT NULL,
  event      text NOT NULL,
  data       jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, seq)
);

-- Wakes the agentds: a job to claim (inserted, or handed back to pending), or a job cancelled.
CREATE FUNCTION agent_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state = 'pending' THEN
    PERFORM pg_notify('agent_jobs', NEW.id::text);
  ELSIF NEW.state = 'cancelled' THEN
    PERFORM pg_notify('agent_jobs_cancel', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER agent_jobs_notify AFTER INSERT OR UPDATE OF state ON agent_jobs
  FOR EACH ROW EXECUTE FUNCTION agent_jobs_notify();
