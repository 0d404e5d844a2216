-- bench/products/seed.sql - the data of the product benchmark (bench/products/run.sh).
--
--   psql -v hash='<argon2id PHC string of the bench password>' -v users=200 -f seed.sql
--
-- One tenant (slug bench-products) with :users users bench0001@bench.example ..., each owning
-- 9 products; user i shares its first product with user i+1 (view) and its second with user
-- i+2 (edit), so every user sees 9 own + 2 shared products. Every product has an Ideation
-- submission, 3 knowledge articles and a conversation session with 4 messages. Ids are
-- derived from md5 of a name, so the run script can compute them; a rerun first deletes the
-- tenant's previous data (products cascade) and recreates it.
\set ON_ERROR_STOP 1

BEGIN;

INSERT INTO tenants (id, name, slug, description)
VALUES ('bbbbbbbb-0000-0000-0000-000000000001', 'Bench Products', 'bench-products',
	'bench/products/run.sh')
ON CONFLICT (id) DO NOTHING;

DELETE FROM products WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';
DELETE FROM user_sessions WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';
DELETE FROM user_profiles WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';

INSERT INTO user_profiles (id, email, full_name, tenant_id, password_hash)
SELECT md5('bench-user-' || i)::uuid, format('bench%s@bench.example', lpad(i::text, 4, '0')),
       format('Bench User %s', i), 'bbbbbbbb-0000-0000-0000-000000000001', :'hash'
FROM generate_series(1, :users) AS i;

INSERT INTO products (id, user_id, tenant_id, name, description, status, created_at, updated_at)
SELECT md5(format('bench-product-%s-%s', i, k))::uuid, md5('bench-user-' || i)::uuid,
       'bbbbbbbb-0000-0000-0000-000000000001', format('Product %s of user %s', k, i),
       'A product of the benchmark with a description of typical length: it helps teams '
       'turn ideas into requirements, with market research and a launch plan.',
       (ARRAY['ideation', 'build', 'operate'])[1 + k % 3],
       now() - make_interval(hours => i * 10 + k), now() - make_interval(hours => i * 10 + k)
FROM generate_series(1, :users) AS i, generate_series(1, 9) AS k;

INSERT INTO product_shares (product_id, tenant_id, shared_with_user_id, shared_by_user_id,
			    permission)
SELECT md5(format('bench-product-%s-%s', i, s.k))::uuid, 'bbbbbbbb-0000-0000-0000-000000000001',
       md5('bench-user-' || (1 + (i - 1 + s.k) % :users))::uuid, md5('bench-user-' || i)::uuid,
       s.perm
FROM generate_series(1, :users) AS i, (VALUES (1, 'view'), (2, 'edit')) AS s(k, perm);

INSERT INTO phase_submissions (product_id, phase_id, user_id, tenant_id, form_data, status)
SELECT p.id, '00000000-0000-0000-0001-000000000001', p.user_id, p.tenant_id,
       '{"problem_statement": "Teams lose time", "target_audience": "Product managers", '
       '"value_proposition": "A PRD in an hour"}', 'in_progress'
FROM products p WHERE p.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';

INSERT INTO knowledge_articles (product_id, tenant_id, title, content, source)
SELECT p.id, p.tenant_id, a.title, a.content, 'manual'
FROM products p,
     (VALUES ('Roadmap', 'The roadmap lists the milestones of the next two quarters: beta, '
	      'general availability and the first enterprise features.'),
	     ('Pricing notes', 'Three tiers; the roadmap decides when the enterprise tier ships.'),
	     ('Architecture', 'Services talk through a queue; processing is asynchronous and '
	      'every request is idempotent.')) AS a(title, content)
WHERE p.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';

INSERT INTO conversation_sessions (id, user_id, product_id, tenant_id, title)
SELECT md5('bench-session-' || p.id)::uuid, p.user_id, p.id, p.tenant_id,
       'Product Lifecycle Session'
FROM products p WHERE p.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';

INSERT INTO conversation_history (session_id, product_id, tenant_id, message_type, agent_name,
				  agent_role, content, created_at)
SELECT md5('bench-session-' || p.id)::uuid, p.id, p.tenant_id,
       CASE WHEN m % 2 = 1 THEN 'user' ELSE 'agent' END,
       CASE WHEN m % 2 = 0 THEN 'Research Agent' END, CASE WHEN m % 2 = 0 THEN 'research' END,
       format('Message %s about the market of this product.', m),
       now() - make_interval(mins => 10 - m)
FROM products p, generate_series(1, 4) AS m
WHERE p.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001';

COMMIT;

ANALYZE products;
ANALYZE product_shares;
ANALYZE phase_submissions;
ANALYZE knowledge_articles;
ANALYZE conversation_sessions;
ANALYZE conversation_history;
