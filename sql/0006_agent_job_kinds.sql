-- 0006_agent_job_kinds.sql - the AI features of API.md 1.10 run as agent jobs too (issue 12
-- item 5): summarize, score and generate-prd are answered by ideaforge-agentd, which writes
-- product_summaries, product_idea_scores and product_prd_documents together with the job's
-- completion. The kind CHECK grows to name them.

ALTER TABLE agent_jobs DROP CONSTRAINT agent_jobs_kind_check;
ALTER TABLE agent_jobs ADD CONSTRAINT agent_jobs_kind_check
  CHECK (kind IN ('multi_agent', 'phase_form_help', 'agent', 'summarize', 'score',
                  'generate_prd'));
