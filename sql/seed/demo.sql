-- demo.sql - opt-in demo data: two more tenants, ten users, sample products, shares, phase
-- submissions, knowledge articles and a conversation. Loaded by `ideaforgectl seed-demo`,
-- which runs this file in one transaction after setting ideaforge.demo_hash to an argon2id
-- hash of the documented demo password (password123) made with the configured parameters.
--
-- Idempotent: fixed ids and ON CONFLICT DO NOTHING everywhere, so a rerun adds what is missing
-- and changes nothing else (it never resets a password: use `ideaforgectl user passwd`).
-- Rows refer to users by email, not by id, so a demo address that already exists (say, an
-- admin created with `ideaforgectl user add`) is used as it is.
--
-- Demo ids: de000000-0000-0000-00KK-0000000000NN, KK = 01 users, 02 products, 03 shares,
-- 04 phase submissions, 05 knowledge articles, 06 conversation sessions, 07 messages.
-- Tenant ids follow the original: ...0001 default (created by the migration), ...0002 Acme
-- Corp, ...0003 TechStart Inc.

DO $$
BEGIN
  IF coalesce(current_setting('ideaforge.demo_hash', true), '') NOT LIKE '$argon2id$%' THEN
    RAISE EXCEPTION 'ideaforge.demo_hash is not set'
      USING HINT = 'load the demo data with: ideaforgectl seed-demo';
  END IF;
END
$$;

INSERT INTO tenants (id, name, slug, description)
VALUES
  ('00000000-0000-0000-0000-000000000002', 'Acme Corp', 'acme-corp', 'Demo tenant'),
  ('00000000-0000-0000-0000-000000000003', 'TechStart Inc', 'techstart', 'Demo tenant')
ON CONFLICT DO NOTHING;

INSERT INTO user_profiles (id, email, full_name, persona, tenant_id, password_hash)
SELECT v.id::uuid, v.email, v.full_name, v.persona, t.id, current_setting('ideaforge.demo_hash')
FROM (VALUES
  ('de000000-0000-0000-0001-000000000001', 'admin@ideaforge.ai', 'Admin User', 'product_manager', 'default'),
  ('de000000-0000-0000-0001-000000000002', 'user1@ideaforge.ai', 'User One', 'product_manager', 'default'),
  ('de000000-0000-0000-0001-000000000003', 'user2@ideaforge.ai', 'User Two', 'leadership', 'default'),
  ('de000000-0000-0000-0001-000000000004', 'alice@acme.com', 'Alice Johnson', 'product_manager', 'acme-corp'),
  ('de000000-0000-0000-0001-000000000005', 'bob@acme.com', 'Bob Smith', 'tech_lead', 'acme-corp'),
  ('de000000-0000-0000-0001-000000000006', 'carol@acme.com', 'Carol Williams', 'leadership', 'acme-corp'),
  ('de000000-0000-0000-0001-000000000007', 'dave@techstart.com', 'Dave Brown', 'product_manager', 'techstart'),
  ('de000000-0000-0000-0001-000000000008', 'eve@techstart.com', 'Eve Davis', 'product_manager', 'techstart'),
  ('de000000-0000-0000-0001-000000000009', 'frank@techstart.com', 'Frank Miller', 'tech_lead', 'techstart'),
  ('de000000-0000-0000-0001-000000000010', 'grace@techstart.com', 'Grace Wilson', 'leadership', 'techstart')
) AS v(id, email, full_name, persona, tenant_slug)
JOIN tenants t ON t.slug = v.tenant_slug
ON CONFLICT DO NOTHING;

INSERT INTO user_preferences (user_id)
SELECT id FROM user_profiles
WHERE email IN ('admin@ideaforge.ai', 'user1@ideaforge.ai', 'user2@ideaforge.ai',
                'alice@acme.com', 'bob@acme.com', 'carol@acme.com', 'dave@techstart.com',
                'eve@techstart.com', 'frank@techstart.com', 'grace@techstart.com')
ON CONFLICT DO NOTHING;

-- Products: owner by email; the tenant is the owner's.
INSERT INTO products (id, user_id, tenant_id, name, description, status, metadata, created_at, updated_at)
SELECT v.id::uuid, u.id, u.tenant_id, v.name, v.description, v.status, v.metadata::jsonb,
       now() - v.age::interval, now() - v.age::interval
FROM (VALUES
  ('de000000-0000-0000-0002-000000000001', 'admin@ideaforge.ai', 'AI Product Manager Assistant',
   'An assistant that turns raw product ideas into structured PRDs with help from specialised agents.',
   'ideation', '{"market_context": "B2B SaaS product teams", "technical_context": "LLM agents, PostgreSQL"}', '2 days'),
  ('de000000-0000-0000-0002-000000000002', 'admin@ideaforge.ai', 'Smart Analytics Platform',
   'Self-service dashboards and anomaly alerts for operations teams.',
   'build', '{}', '5 days'),
  ('de000000-0000-0000-0002-000000000003', 'admin@ideaforge.ai', 'Customer Feedback Hub',
   'Collects feedback from support, sales and app stores and clusters it into themes.',
   'operate', '{}', '9 days'),
  ('de000000-0000-0000-0002-000000000004', 'user1@ideaforge.ai', 'Mobile Onboarding Revamp',
   'Cut time-to-first-value of the mobile app from ten minutes to two.',
   'ideation', '{}', '1 day'),
  ('de000000-0000-0000-0002-000000000005', 'alice@acme.com', 'Acme Supply Chain Optimizer',
   'Forecasts demand per warehouse and proposes transfers before stock-outs happen.',
   'build', '{}', '3 days'),
  ('de000000-0000-0000-0002-000000000006', 'dave@techstart.com', 'TechStart Developer Portal',
   'One place for API keys, docs, usage and billing for TechStart''s developer customers.',
   'ideation', '{}', '4 days')
) AS v(id, owner_email, name, description, status, metadata, age)
JOIN user_profiles u ON u.email = v.owner_email
ON CONFLICT DO NOTHING;

-- Shares, always inside the product's tenant (the composite foreign keys insist).
INSERT INTO product_shares (id, product_id, tenant_id, shared_with_user_id, shared_by_user_id, permission)
SELECT v.id::uuid, p.id, p.tenant_id, w.id, p.user_id, v.permission
FROM (VALUES
  ('de000000-0000-0000-0003-000000000001', 'de000000-0000-0000-0002-000000000001', 'user1@ideaforge.ai', 'edit'),
  ('de000000-0000-0000-0003-000000000002', 'de000000-0000-0000-0002-000000000001', 'user2@ideaforge.ai', 'view'),
  ('de000000-0000-0000-0003-000000000003', 'de000000-0000-0000-0002-000000000004', 'admin@ideaforge.ai', 'view'),
  ('de000000-0000-0000-0003-000000000004', 'de000000-0000-0000-0002-000000000005', 'bob@acme.com', 'edit')
) AS v(id, product_id, with_email, permission)
JOIN products p ON p.id = v.product_id::uuid
JOIN user_profiles w ON w.email = v.with_email
ON CONFLICT DO NOTHING;

-- The first two phases of the AI Product Manager Assistant; keys are the phases'
-- required_fields.
INSERT INTO phase_submissions (id, product_id, phase_id, user_id, tenant_id, form_data, status)
SELECT v.id::uuid, p.id, ph.id, p.user_id, p.tenant_id, v.form_data::jsonb, v.status
FROM (VALUES
  ('de000000-0000-0000-0004-000000000001', 'Ideation', 'completed',
   '{"problem_statement": "Product managers spend days turning a rough idea into a PRD that engineering can estimate.",
     "target_audience": "Product managers and tech leads in B2B software companies of 50-2000 people.",
     "value_proposition": "A structured PRD draft in an hour, with market and technical checks built in."}'),
  ('de000000-0000-0000-0004-000000000002', 'Market Research', 'in_progress',
   '{"market_size": "About 1.2M product managers worldwide; serviceable market of 150k in mid-size B2B.",
     "competitors": "Generic AI writing tools, Productboard, Aha!, Notion AI.",
     "market_trends": ""}')
) AS v(id, phase_name, status, form_data)
JOIN product_lifecycle_phases ph ON ph.phase_name = v.phase_name
JOIN products p ON p.id = 'de000000-0000-0000-0002-000000000001'
ON CONFLICT DO NOTHING;

INSERT INTO knowledge_articles (id, product_id, tenant_id, title, content, source, metadata)
SELECT v.id::uuid, p.id, p.tenant_id, v.title, v.content, v.source, v.metadata::jsonb
FROM (VALUES
  ('de000000-0000-0000-0005-000000000001', 'de000000-0000-0000-0002-000000000001',
   'Customer interview notes: PRD pain points',
   'Eight of ten interviewed product managers said the slowest part of writing a PRD is collecting '
   'market data and non-functional requirements. Most reuse an old document as a template.',
   'manual', '{}'),
  ('de000000-0000-0000-0005-000000000002', 'de000000-0000-0000-0002-000000000001',
   'Competitive landscape summary',
   'Roadmapping tools focus on prioritisation; AI writing assistants produce generic text without '
   'lifecycle structure. No competitor links ideation, research and requirements in one flow.',
   'manual', '{}'),
  ('de000000-0000-0000-0005-000000000003', 'de000000-0000-0000-0002-000000000005',
   'Warehouse stock-out report Q3',
   'Stock-outs in the northern warehouses cost an estimated 4% of quarterly revenue; transfers were '
   'decided manually, on average three days after the shortage was visible.',
   'local_upload', '{"filename": "stockouts-q3.txt", "content_type": "text/plain"}')
) AS v(id, product_id, title, content, source, metadata)
JOIN products p ON p.id = v.product_id::uuid
ON CONFLICT DO NOTHING;

INSERT INTO conversation_sessions (id, user_id, product_id, tenant_id, title, created_at, updated_at)
SELECT 'de000000-0000-0000-0006-000000000001', p.user_id, p.id, p.tenant_id,
       'Product Lifecycle Session', now() - interval '1 day', now() - interval '1 day'
FROM products p
WHERE p.id = 'de000000-0000-0000-0002-000000000001'
ON CONFLICT DO NOTHING;

INSERT INTO conversation_history
  (id, session_id, product_id, phase_id, tenant_id, message_type, agent_name, agent_role,
   content, interaction_metadata, created_at)
SELECT v.id::uuid, s.id, s.product_id, ph.id, s.tenant_id, v.message_type, v.agent_name,
       v.agent_role, v.content, v.meta::jsonb, now() - interval '1 day' + v.offs::interval
FROM (VALUES
  ('de000000-0000-0000-0007-000000000001', 'user', NULL, NULL,
   'Help me sharpen the problem statement for an AI assistant for product managers.', '{}', '0 minutes'),
  ('de000000-0000-0000-0007-000000000002', 'agent', 'Ideation Agent', 'ideation',
   'Focus on the outcome: "Product managers need a PRD that engineering can estimate within a day of having the idea." Then name who feels the pain most: PMs in mid-size B2B teams without a research function.',
   '{"agent_interactions": []}', '1 minute'),
  ('de000000-0000-0000-0007-000000000003', 'user', NULL, NULL,
   'Who are the main competitors?', '{}', '5 minutes'),
  ('de000000-0000-0000-0007-000000000004', 'agent', 'Research Agent', 'research',
   'Roadmapping tools (Productboard, Aha!) and general AI writers (Notion AI). None connects ideation, research and requirements in one guided flow, which is the gap to position against.',
   '{"agent_interactions": []}', '6 minutes')
) AS v(id, message_type, agent_name, agent_role, content, meta, offs)
JOIN conversation_sessions s ON s.id = 'de000000-0000-0000-0006-000000000001'
JOIN product_lifecycle_phases ph ON ph.phase_name = 'Ideation'
ON CONFLICT DO NOTHING;

-- Row counts of the demo data set, printed by ideaforgectl.
SELECT
  (SELECT count(*) FROM tenants WHERE slug IN ('acme-corp', 'techstart')) AS tenants,
  (SELECT count(*) FROM user_profiles
    WHERE email LIKE '%@ideaforge.ai' OR email LIKE '%@acme.com' OR email LIKE '%@techstart.com') AS users,
  (SELECT count(*) FROM products WHERE id::text LIKE 'de000000-%') AS products,
  (SELECT count(*) FROM product_shares WHERE id::text LIKE 'de000000-%') AS shares,
  (SELECT count(*) FROM phase_submissions WHERE id::text LIKE 'de000000-%') AS submissions,
  (SELECT count(*) FROM knowledge_articles WHERE id::text LIKE 'de000000-%') AS articles,
  (SELECT count(*) FROM conversation_history WHERE id::text LIKE 'de000000-%') AS messages;
