-- bench/agents/seed.sql - the users of the agent benchmark (bench/agents/run.sh).
--
--   psql -v hash='<argon2id PHC string of the bench password>' -v users=100 -f seed.sql
--
-- One tenant (slug bench-agents) with :users users agent0000@bench.example ..., each owning one
-- product with one knowledge article (the multi-agent scenario asks about that product, so the
-- rag agent has something to retrieve). Ids are md5 of a name, so a rerun replaces the data.
\set ON_ERROR_STOP 1

BEGIN;

INSERT INTO tenants (id, name, slug, description)
VALUES ('bbbbbbbb-0000-0000-0000-0000000000a9', 'Bench Agents', 'bench-agents',
	'bench/agents/run.sh')
ON CONFLICT (id) DO NOTHING;

DELETE FROM products WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000a9';
DELETE FROM user_sessions WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000a9';
DELETE FROM user_profiles WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000a9';

INSERT INTO user_profiles (id, email, full_name, tenant_id, password_hash)
SELECT md5('bench-agent-user-' || i)::uuid, format('agent%s@bench.example', lpad(i::text, 4, '0')),
       format('Agent Bench User %s', i), 'bbbbbbbb-0000-0000-0000-0000000000a9', :'hash'
FROM generate_series(0, :users - 1) AS i;

INSERT INTO products (id, user_id, tenant_id, name, description, status)
SELECT md5('bench-agent-product-' || i)::uuid, md5('bench-agent-user-' || i)::uuid,
       'bbbbbbbb-0000-0000-0000-0000000000a9', format('Agent bench product %s', i),
       'A tool that turns product ideas into requirements and a launch plan for small teams.',
       'ideation'
FROM generate_series(0, :users - 1) AS i;

INSERT INTO knowledge_articles (product_id, tenant_id, title, content, source)
SELECT md5('bench-agent-product-' || i)::uuid, 'bbbbbbbb-0000-0000-0000-0000000000a9',
       'Market notes', 'Our market: product managers in teams of 5 to 50; competitors sell '
       'per seat; pricing and roadmap are the open questions of the ideation phase.', 'manual'
FROM generate_series(0, :users - 1) AS i;

COMMIT;
