-- 0001_core.sql - the IdeaForge schema (spec/API.md section 2), PostgreSQL 15, no extensions.
--
-- Applied by `ideaforgectl migrate` inside one transaction (the runner adds BEGIN/COMMIT and
-- the schema_migrations row; this file must not contain transaction control). Forward-only:
-- once applied anywhere, this file never changes; later changes go into sql/NNNN_*.sql.
--
-- What differs from the original schema, on purpose (API.md section 8):
--  * Constraints are enforced, not decorative: every tenant_id is NOT NULL with a foreign key,
--    every enumerated text column has a CHECK, the unique keys the code upserts on exist.
--  * Tenant consistency is a foreign key, not a convention. user_profiles and products expose
--    UNIQUE (id, tenant_id); every tenant-scoped row references (product_id, tenant_id) and/or
--    (user_id, tenant_id). An INSERT that carries the caller's tenant_id with another tenant's
--    product or user id fails with a foreign-key violation (SQLSTATE 23503), so a handler bug
--    cannot write a cross-tenant row, and filtering a child table on its own tenant_id is
--    exactly filtering on its product's tenant.
--  * Rule: every row that belongs to a product carries tenant_id NOT NULL (product_shares,
--    conversation_sessions, conversation_history, phase_submissions, knowledge_articles,
--    design_mockups, product_idea_scores, product_summaries, product_prd_documents,
--    review_reports), and so does user_sessions. Per-user settings (user_preferences,
--    user_api_keys) hang off the user only.
--  * Deleting a product deletes everything about it (shares, sessions and their history,
--    submissions, articles, mockups, scores, summaries, PRDs, reports).
--  * No pgvector: knowledge retrieval is full-text search on knowledge_articles.search_vector.
--  * No RLS (the original's was never in force); access rules live in each route's SQL.
--  * Emails are stored lower-case (CHECK), so the UNIQUE key is case-insensitive in effect.
--  * Dropped: agent_messages (nothing writes it; sessions are counted from
--    conversation_history), prd_documents, agent_activity_log, feedback_entries,
--    exported_documents, agent_interactions, multi_agent_sessions, session_selections, the
--    anonymous user (every route now requires a session), the unused SQL helper functions, and
--    the SSO columns other than mckinsey_subject (returned by /api/auth/me).
--  * Added: user_sessions, the durable record of every login (ARCHITECTURE.md section 3).

-- --- helpers --------------------------------------------------------------------------------

-- BEFORE UPDATE trigger: keeps updated_at truthful whatever the statement sets.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

-- --- tenants and users ----------------------------------------------------------------------

CREATE TABLE tenants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL CONSTRAINT tenants_name_key UNIQUE
              CONSTRAINT tenants_name_check CHECK (btrim(name) <> ''),
  slug        text NOT NULL CONSTRAINT tenants_slug_key UNIQUE
              CONSTRAINT tenants_slug_check CHECK (slug ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'),
  description text,
  metadata    jsonb NOT NULL DEFAULT '{}'
              CONSTRAINT tenants_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_profiles (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email            text NOT NULL CONSTRAINT user_profiles_email_key UNIQUE,
  full_name        text,
  persona          text NOT NULL DEFAULT 'product_manager',
  preferences      jsonb NOT NULL DEFAULT '{}',
  -- PHC string: $argon2id$... (current) or $2b$/$2a$/$2y$ bcrypt (legacy, rehashed on login);
  -- NULL = no password login (SSO user).
  password_hash    text,
  tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  is_active        boolean NOT NULL DEFAULT true,
  last_login_at    timestamptz,
  auth_provider    text NOT NULL DEFAULT 'local',
  external_id      text,
  avatar_url       text,
  mckinsey_subject text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  -- Target of the composite foreign keys that pin a child row to its user's tenant.
  CONSTRAINT user_profiles_id_tenant_key UNIQUE (id, tenant_id),
  CONSTRAINT user_profiles_email_lower_check CHECK (email = lower(email)),
  CONSTRAINT user_profiles_email_check CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  CONSTRAINT user_profiles_persona_check
    CHECK (persona IN ('product_manager', 'leadership', 'tech_lead')),
  CONSTRAINT user_profiles_auth_provider_check
    CHECK (auth_provider IN ('local', 'github', 'okta', 'oauth')),
  CONSTRAINT user_profiles_preferences_check CHECK (jsonb_typeof(preferences) = 'object'),
  CONSTRAINT user_profiles_password_hash_check CHECK (password_hash <> '')
);
-- GET /api/auth/users: active users of a tenant ordered by full_name, email; also serves the
-- tenant foreign key.
CREATE INDEX user_profiles_tenant_name_idx ON user_profiles (tenant_id, full_name, email);
CREATE UNIQUE INDEX user_profiles_external_id_key ON user_profiles (auth_provider, external_id)
  WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX user_profiles_mckinsey_subject_key ON user_profiles (mckinsey_subject)
  WHERE mckinsey_subject IS NOT NULL;

CREATE TABLE user_preferences (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id               uuid NOT NULL CONSTRAINT user_preferences_user_id_key UNIQUE
                        REFERENCES user_profiles (id) ON DELETE CASCADE,
  theme                 text NOT NULL DEFAULT 'light',
  language              text NOT NULL DEFAULT 'en',
  notifications_enabled boolean NOT NULL DEFAULT true,
  email_notifications   boolean NOT NULL DEFAULT false,
  preferences           jsonb NOT NULL DEFAULT '{}',
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT user_preferences_theme_check CHECK (theme IN ('light', 'dark', 'retro')),
  CONSTRAINT user_preferences_language_check CHECK (length(language) BETWEEN 1 AND 35),
  CONSTRAINT user_preferences_preferences_check CHECK (jsonb_typeof(preferences) = 'object')
);

-- The durable record of a login (ARCHITECTURE.md section 3); Redis only caches it.
-- id is the JWT jti. A session is valid while revoked_at IS NULL AND expires_at > now() and
-- its user is active.
CREATE TABLE user_sessions (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL,
  tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  last_seen_at timestamptz,
  user_agent   text,
  ip           inet,
  CONSTRAINT user_sessions_user_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT user_sessions_expiry_check CHECK (expires_at > created_at)
);
-- "Revoke every session of this user" (logout-all, password change, deactivation).
CREATE INDEX user_sessions_user_live_idx ON user_sessions (user_id) WHERE revoked_at IS NULL;
-- Purging old rows; also serves the user foreign key's cascade on user deletion.
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id, tenant_id);
CREATE INDEX user_sessions_expires_idx ON user_sessions (expires_at);

-- --- products and sharing -------------------------------------------------------------------

CREATE TABLE products (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL,           -- owner
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  name        text NOT NULL,
  description text,
  status      text NOT NULL DEFAULT 'ideation',
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT products_id_tenant_key UNIQUE (id, tenant_id),
  -- The owner belongs to the product's tenant.
  CONSTRAINT products_owner_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT products_status_check
    CHECK (status IN ('ideation', 'build', 'operate', 'learn', 'govern', 'sunset')),
  CONSTRAINT products_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
-- GET /api/products (mine, newest first) and the owner foreign key.
CREATE INDEX products_tenant_user_idx ON products (tenant_id, user_id, updated_at DESC);
-- GET /api/products/portfolio (whole tenant, newest first).
CREATE INDEX products_tenant_updated_idx ON products (tenant_id, updated_at DESC);

CREATE TABLE product_shares (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id          uuid NOT NULL,
  tenant_id           uuid NOT NULL,
  shared_with_user_id uuid NOT NULL,
  shared_by_user_id   uuid NOT NULL,
  permission          text NOT NULL DEFAULT 'view',
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT product_shares_product_user_key UNIQUE (product_id, shared_with_user_id),
  CONSTRAINT product_shares_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  -- Sharing stays inside the tenant: both users belong to the product's tenant.
  CONSTRAINT product_shares_shared_with_fkey FOREIGN KEY (shared_with_user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT product_shares_shared_by_fkey FOREIGN KEY (shared_by_user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT product_shares_permission_check CHECK (permission IN ('view', 'edit', 'admin')),
  CONSTRAINT product_shares_not_self_check CHECK (shared_with_user_id <> shared_by_user_id)
);
-- "Products shared with me" (visibility test of every product route).
CREATE INDEX product_shares_shared_with_idx ON product_shares (shared_with_user_id, product_id);
CREATE INDEX product_shares_shared_by_idx ON product_shares (shared_by_user_id);

-- --- lifecycle phases and submissions -------------------------------------------------------

CREATE TABLE product_lifecycle_phases (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  phase_name       text NOT NULL CONSTRAINT product_lifecycle_phases_phase_name_key UNIQUE,
  phase_order      integer NOT NULL
                   CONSTRAINT product_lifecycle_phases_phase_order_key UNIQUE
                   CONSTRAINT product_lifecycle_phases_phase_order_check CHECK (phase_order > 0),
  description      text NOT NULL,
  icon             text NOT NULL DEFAULT '📋',
  required_fields  jsonb NOT NULL DEFAULT '[]',
  template_prompts jsonb NOT NULL DEFAULT '[]',
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT product_lifecycle_phases_required_fields_check
    CHECK (jsonb_typeof(required_fields) = 'array'),
  CONSTRAINT product_lifecycle_phases_template_prompts_check
    CHECK (jsonb_typeof(template_prompts) = 'array')
);

CREATE TABLE phase_submissions (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id        uuid NOT NULL,
  phase_id          uuid NOT NULL REFERENCES product_lifecycle_phases (id) ON DELETE RESTRICT,
  -- Last writer. NULL only after that user was deleted: the product's data outlives a
  -- collaborator.
  user_id           uuid REFERENCES user_profiles (id) ON DELETE SET NULL,
  tenant_id         uuid NOT NULL,
  form_data         jsonb NOT NULL DEFAULT '{}',
  generated_content text,
  status            text NOT NULL DEFAULT 'draft',
  metadata          jsonb NOT NULL DEFAULT '{}',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- POST /api/db/phase-submissions upserts on this key.
  CONSTRAINT phase_submissions_product_phase_key UNIQUE (product_id, phase_id),
  CONSTRAINT phase_submissions_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT phase_submissions_status_check
    CHECK (status IN ('draft', 'in_progress', 'completed', 'reviewed')),
  CONSTRAINT phase_submissions_form_data_check CHECK (jsonb_typeof(form_data) = 'object'),
  CONSTRAINT phase_submissions_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX phase_submissions_tenant_idx ON phase_submissions (tenant_id, created_at);
CREATE INDEX phase_submissions_phase_idx ON phase_submissions (phase_id);
CREATE INDEX phase_submissions_user_idx ON phase_submissions (user_id) WHERE user_id IS NOT NULL;

-- --- conversations --------------------------------------------------------------------------

CREATE TABLE conversation_sessions (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL,
  product_id uuid,                    -- NULL = general chat, not about one product
  tenant_id  uuid NOT NULL,
  title      text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT conversation_sessions_id_tenant_key UNIQUE (id, tenant_id),
  CONSTRAINT conversation_sessions_user_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT conversation_sessions_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE
);
-- "My sessions" and "my session for this product" (product_id IS NOT DISTINCT FROM $2).
CREATE INDEX conversation_sessions_user_idx ON conversation_sessions (user_id, product_id, updated_at DESC);
CREATE INDEX conversation_sessions_product_idx ON conversation_sessions (product_id)
  WHERE product_id IS NOT NULL;
CREATE INDEX conversation_sessions_tenant_idx ON conversation_sessions (tenant_id);

CREATE TABLE conversation_history (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id           uuid NOT NULL,
  product_id           uuid,
  phase_id             uuid REFERENCES product_lifecycle_phases (id) ON DELETE SET NULL,
  tenant_id            uuid NOT NULL,
  message_type         text NOT NULL,
  agent_name           text,
  agent_role           text,
  content              text NOT NULL,
  formatted_content    text,
  parent_message_id    uuid REFERENCES conversation_history (id) ON DELETE SET NULL,
  interaction_metadata jsonb NOT NULL DEFAULT '{}',
  created_at           timestamptz NOT NULL DEFAULT now(),
  -- The message is in its session's tenant, and its product (if any) too.
  CONSTRAINT conversation_history_session_fkey FOREIGN KEY (session_id, tenant_id)
    REFERENCES conversation_sessions (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT conversation_history_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT conversation_history_message_type_check
    CHECK (message_type IN ('user', 'agent', 'system')),
  CONSTRAINT conversation_history_interaction_metadata_check
    CHECK (jsonb_typeof(interaction_metadata) = 'object')
);
-- A session's transcript, oldest first.
CREATE INDEX conversation_history_session_idx ON conversation_history (session_id, created_at);
-- A product's chat (export, design prompts, history by product).
CREATE INDEX conversation_history_product_idx ON conversation_history (product_id, created_at)
  WHERE product_id IS NOT NULL;
-- Tenant-wide scans (usage stats over the last 30 days).
CREATE INDEX conversation_history_tenant_idx ON conversation_history (tenant_id, created_at DESC);
CREATE INDEX conversation_history_phase_idx ON conversation_history (phase_id)
  WHERE phase_id IS NOT NULL;
CREATE INDEX conversation_history_parent_idx ON conversation_history (parent_message_id)
  WHERE parent_message_id IS NOT NULL;

-- --- knowledge base -------------------------------------------------------------------------

CREATE TABLE knowledge_articles (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id    uuid NOT NULL,
  tenant_id     uuid NOT NULL,
  title         text NOT NULL,
  content       text NOT NULL,
  source        text NOT NULL DEFAULT 'manual',
  metadata      jsonb NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Retrieval: title weighs more than body. Query with
  --   search_vector @@ websearch_to_tsquery('english', $q)
  --   ORDER BY ts_rank(search_vector, websearch_to_tsquery('english', $q)) DESC
  search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(content, '')), 'B')) STORED,
  CONSTRAINT knowledge_articles_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT knowledge_articles_source_check
    CHECK (source IN ('manual', 'jira', 'confluence', 'github', 'local_upload')),
  CONSTRAINT knowledge_articles_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX knowledge_articles_product_idx ON knowledge_articles (product_id, created_at DESC);
CREATE INDEX knowledge_articles_tenant_idx ON knowledge_articles (tenant_id, created_at DESC);
CREATE INDEX knowledge_articles_search_idx ON knowledge_articles USING gin (search_vector);

-- --- design prototypes ----------------------------------------------------------------------

CREATE TABLE design_mockups (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id          uuid NOT NULL,
  phase_submission_id uuid REFERENCES phase_submissions (id) ON DELETE CASCADE,
  user_id             uuid NOT NULL,
  tenant_id           uuid NOT NULL,
  provider            text NOT NULL,
  prompt              text NOT NULL,
  image_url           text,
  thumbnail_url       text,
  v0_chat_id          text,
  v0_project_id       text,
  -- pending_manual_check is what the V0 poller writes after its 15-minute budget when the
  -- project exists but no demo URL appeared (the original's CHECK rejected it).
  project_status      text NOT NULL DEFAULT 'pending',
  project_url         text,
  metadata            jsonb NOT NULL DEFAULT '{}',
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- The key the design code upserts on (absent in the original); a NULL submission counts
  -- as one value.
  CONSTRAINT design_mockups_upsert_key
    UNIQUE NULLS NOT DISTINCT (product_id, phase_submission_id, user_id, provider),
  CONSTRAINT design_mockups_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT design_mockups_user_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT design_mockups_provider_check CHECK (provider IN ('v0', 'lovable')),
  CONSTRAINT design_mockups_project_status_check
    CHECK (project_status IN ('pending', 'in_progress', 'completed', 'failed', 'timeout',
                              'pending_manual_check')),
  CONSTRAINT design_mockups_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX design_mockups_product_status_idx ON design_mockups (product_id, project_status);
CREATE INDEX design_mockups_submission_idx ON design_mockups (phase_submission_id)
  WHERE phase_submission_id IS NOT NULL;
CREATE INDEX design_mockups_user_idx ON design_mockups (user_id, product_id);
CREATE INDEX design_mockups_v0_chat_idx ON design_mockups (v0_chat_id) WHERE v0_chat_id IS NOT NULL;

-- --- per-user provider keys and integrations ------------------------------------------------

CREATE TABLE user_api_keys (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id           uuid NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE,
  provider          text NOT NULL,
  -- Encrypted with the configured master key (secrets_key_file); never returned in clear.
  api_key_encrypted text NOT NULL,
  is_active         boolean NOT NULL DEFAULT true,
  metadata          jsonb NOT NULL DEFAULT '{}',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT user_api_keys_user_provider_key UNIQUE (user_id, provider),
  CONSTRAINT user_api_keys_provider_check
    CHECK (provider IN ('openai', 'anthropic', 'google', 'v0', 'lovable', 'github',
                        'atlassian', 'ai_gateway')),
  CONSTRAINT user_api_keys_encrypted_check CHECK (api_key_encrypted <> ''),
  CONSTRAINT user_api_keys_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

-- --- scoring, summaries, PRDs, progress reports ---------------------------------------------

CREATE TABLE product_idea_scores (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id          uuid NOT NULL,
  tenant_id           uuid NOT NULL,
  overall_score       numeric(5, 2) NOT NULL,
  success_probability numeric(5, 2),
  scoring_data        jsonb NOT NULL,          -- dimensions
  recommendations     jsonb NOT NULL DEFAULT '[]',
  success_factors     jsonb NOT NULL DEFAULT '[]',
  risk_factors        jsonb NOT NULL DEFAULT '[]',
  scoring_criteria    jsonb NOT NULL DEFAULT '{}',
  created_by          uuid REFERENCES user_profiles (id) ON DELETE SET NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT product_idea_scores_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT product_idea_scores_overall_check CHECK (overall_score BETWEEN 0 AND 100),
  CONSTRAINT product_idea_scores_probability_check
    CHECK (success_probability BETWEEN 0 AND 100),
  CONSTRAINT product_idea_scores_lists_check
    CHECK (jsonb_typeof(recommendations) = 'array' AND
           jsonb_typeof(success_factors) = 'array' AND
           jsonb_typeof(risk_factors) = 'array')
);
CREATE INDEX product_idea_scores_product_idx ON product_idea_scores (product_id, created_at DESC);
CREATE INDEX product_idea_scores_tenant_idx ON product_idea_scores (tenant_id, created_at DESC);
CREATE INDEX product_idea_scores_created_by_idx ON product_idea_scores (created_by)
  WHERE created_by IS NOT NULL;

CREATE TABLE product_summaries (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id       uuid NOT NULL,
  tenant_id        uuid NOT NULL,
  summary_type     text NOT NULL DEFAULT 'multi_session',
  session_ids      uuid[] NOT NULL DEFAULT '{}',
  summary_content  text NOT NULL,
  summary_metadata jsonb NOT NULL DEFAULT '{}',
  created_by       uuid REFERENCES user_profiles (id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT product_summaries_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT product_summaries_type_check
    CHECK (summary_type IN ('single_session', 'multi_session', 'product_overview')),
  CONSTRAINT product_summaries_metadata_check CHECK (jsonb_typeof(summary_metadata) = 'object')
);
CREATE INDEX product_summaries_product_idx ON product_summaries (product_id, created_at DESC);
CREATE INDEX product_summaries_tenant_idx ON product_summaries (tenant_id);
CREATE INDEX product_summaries_sessions_idx ON product_summaries USING gin (session_ids);
CREATE INDEX product_summaries_created_by_idx ON product_summaries (created_by)
  WHERE created_by IS NOT NULL;

CREATE TABLE product_prd_documents (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id   uuid NOT NULL,
  tenant_id    uuid NOT NULL,
  version      integer NOT NULL DEFAULT 1,
  prd_template text NOT NULL DEFAULT 'industry_standard',
  standards    jsonb NOT NULL DEFAULT '["BCS", "ICAgile", "AIPMM", "Pragmatic Institute"]',
  prd_content  jsonb NOT NULL,
  summary_id   uuid REFERENCES product_summaries (id) ON DELETE SET NULL,
  score_id     uuid REFERENCES product_idea_scores (id) ON DELETE SET NULL,
  status       text NOT NULL DEFAULT 'draft',
  created_by   uuid REFERENCES user_profiles (id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT product_prd_documents_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT product_prd_documents_version_check CHECK (version >= 1),
  CONSTRAINT product_prd_documents_status_check
    CHECK (status IN ('draft', 'in_review', 'approved', 'published')),
  CONSTRAINT product_prd_documents_standards_check CHECK (jsonb_typeof(standards) = 'array')
);
CREATE INDEX product_prd_documents_product_idx ON product_prd_documents (product_id, created_at DESC);
CREATE INDEX product_prd_documents_tenant_idx ON product_prd_documents (tenant_id);
CREATE INDEX product_prd_documents_summary_idx ON product_prd_documents (summary_id)
  WHERE summary_id IS NOT NULL;
CREATE INDEX product_prd_documents_score_idx ON product_prd_documents (score_id)
  WHERE score_id IS NOT NULL;
CREATE INDEX product_prd_documents_created_by_idx ON product_prd_documents (created_by)
  WHERE created_by IS NOT NULL;

-- One progress report per (product, user), upserted by generate-progress-report.
CREATE TABLE review_reports (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id       uuid NOT NULL,
  user_id          uuid NOT NULL,
  tenant_id        uuid NOT NULL,
  -- One decimal: the fallback score is completed phases / 6 * 100 rounded to 0.1.
  overall_score    numeric(5, 1) NOT NULL DEFAULT 0,
  status           text NOT NULL DEFAULT 'in_progress',
  phase_scores     jsonb NOT NULL DEFAULT '[]',
  missing_sections jsonb NOT NULL DEFAULT '[]',
  recommendations  jsonb NOT NULL DEFAULT '[]',
  summary          text,
  report_data      jsonb NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT review_reports_product_user_key UNIQUE (product_id, user_id),
  CONSTRAINT review_reports_product_fkey FOREIGN KEY (product_id, tenant_id)
    REFERENCES products (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT review_reports_user_fkey FOREIGN KEY (user_id, tenant_id)
    REFERENCES user_profiles (id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT review_reports_overall_check CHECK (overall_score BETWEEN 0 AND 100),
  CONSTRAINT review_reports_status_check
    CHECK (status IN ('ready', 'needs_attention', 'in_progress')),
  CONSTRAINT review_reports_lists_check
    CHECK (jsonb_typeof(phase_scores) = 'array' AND
           jsonb_typeof(missing_sections) = 'array' AND
           jsonb_typeof(recommendations) = 'array'),
  CONSTRAINT review_reports_report_data_check CHECK (jsonb_typeof(report_data) = 'object')
);
CREATE INDEX review_reports_user_idx ON review_reports (user_id, tenant_id);

-- --- updated_at triggers --------------------------------------------------------------------

CREATE TRIGGER tenants_updated_at BEFORE UPDATE ON tenants
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_profiles_updated_at BEFORE UPDATE ON user_profiles
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_preferences_updated_at BEFORE UPDATE ON user_preferences
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER products_updated_at BEFORE UPDATE ON products
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER product_shares_updated_at BEFORE UPDATE ON product_shares
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER phase_submissions_updated_at BEFORE UPDATE ON phase_submissions
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER conversation_sessions_updated_at BEFORE UPDATE ON conversation_sessions
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER design_mockups_updated_at BEFORE UPDATE ON design_mockups
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_api_keys_updated_at BEFORE UPDATE ON user_api_keys
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER product_idea_scores_updated_at BEFORE UPDATE ON product_idea_scores
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER product_summaries_updated_at BEFORE UPDATE ON product_summaries
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER product_prd_documents_updated_at BEFORE UPDATE ON product_prd_documents
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER review_reports_updated_at BEFORE UPDATE ON review_reports
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- --- required rows (not demo data) ----------------------------------------------------------

-- SSO users and `ideaforgectl user add` without --tenant land in slug `default`.
INSERT INTO tenants (id, name, slug, description)
VALUES ('00000000-0000-0000-0000-000000000001', 'Default Tenant', 'default',
  'Default tenant for users without an organisation');

-- The six lifecycle phases (API.md section 2.2, Design as updated by the original's
-- 20251124000000). Fixed ids so every installation agrees on them.
INSERT INTO product_lifecycle_phases
  (id, phase_name, phase_order, description, icon, required_fields, template_prompts)
VALUES
  ('00000000-0000-0000-0001-000000000001', 'Ideation', 1,
   'Initial product concept and idea generation', '💡',
   '["problem_statement", "target_audience", "value_proposition"]',
   '["What problem are you solving?", "Who is your target customer?", "What makes your solution unique?"]'),
  ('00000000-0000-0000-0001-000000000002', 'Market Research', 2,
   'Competitive analysis and market validation', '🔍',
   '["market_size", "competitors", "market_trends"]',
   '["What is the market size?", "Who are your main competitors?", "What are current market trends?"]'),
  ('00000000-0000-0000-0001-000000000003', 'Requirements', 3,
   'Define product requirements and specifications', '📋',
   '["functional_requirements", "non_functional_requirements", "constraints"]',
   '["What are the core features?", "What are the performance requirements?", "What are the constraints?"]'),
  ('00000000-0000-0000-0001-000000000004', 'Design', 4,
   'Product design and architecture planning', '🎨',
   '["user_experience", "v0_lovable_prompts", "design_mockups"]',
   '["Describe the user experience and key user flows", "Generate detailed prompts for V0 and Lovable (with Help with AI)", "View and select design mockups"]'),
  ('00000000-0000-0000-0001-000000000005', 'Development Planning', 5,
   'Development roadmap and sprint planning', '⚙️',
   '["milestones", "timeline", "resources"]',
   '["What are the key milestones?", "What is the timeline?", "What resources are needed?"]'),
  ('00000000-0000-0000-0001-000000000006', 'Go-to-Market', 6,
   'Launch strategy and marketing plan', '🚀',
   '["launch_strategy", "marketing_channels", "success_metrics"]',
   '["What is your launch strategy?", "Which marketing channels?", "How do you measure success?"]');
