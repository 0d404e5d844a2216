-- 0008_prd_review_export.sql - review-prd and export-prd use the export agent when the caller
-- has a provider (API.md 1.11, issue 12 item 5): the API computes the deterministic review or
-- report, ideaforge-agentd runs the export agent on it and stores the answer as the job's
-- result (the review's JSON, or the document to download). No table of their own: the result
-- is the route's response. The kind CHECK grows to name them.

ALTER TABLE agent_jobs DROP CONSTRAINT agent_jobs_kind_check;
ALTER TABLE agent_jobs ADD CONSTRAINT agent_jobs_kind_check
  CHECK (kind IN ('multi_agent', 'phase_form_help', 'agent', 'summarize', 'score',
                  'generate_prd', 'review_prd', 'export_prd'));
