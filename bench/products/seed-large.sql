-- bench/products/seed-large.sql - a large tenant, to see how the read path's cost grows with data
-- (issue 17 item 3; bench/products/explain.sh runs the read statements against it).
--
--   psql -v hash='<argon2id PHC string>' -v scale=1 -f seed-large.sql
--
-- Tenant bench-large (cccccccc-...-1) with, at scale 1: 1 000 users (large0001@bench.example
-- ...), 10 000 products (10 per user, each shared with two other users), 20 000 conversation
-- sessions (2 per product) of 50 messages = 1 000 000 conversation_history rows, 100 000
-- knowledge articles (10 per product), 50 000 user_sessions (50 per user, 1 in 10 revoked).
-- scale=0.1 gives a tenth of every count (users stay >= 100). Ids are md5 of a name; a rerun
-- deletes the tenant's data first. Time on the 2-vCPU bench machine: see RESULTS.md.
\set ON_ERROR_STOP 1
\if :{?scale}
\else
\set scale 1
\endif

SET synchronous_commit = off;
BEGIN;
SELECT greatest(100, (1000 * :scale)::int) AS users \gset
INSERT INTO tenants (id, name, slug, description)
VALUES ('cccccccc-0000-0000-0000-000000000001', 'Bench Large', 'bench-large',
	'bench/products/seed-large.sql')
ON CONFLICT (id) DO NOTHING;
DELETE FROM products WHERE tenant_id = 'cccccccc-0000-0000-0000-000000000001';
DELETE FROM user_sessions WHERE tenant_id = 'cccccccc-0000-0000-0000-000000000001';
DELETE FROM conversation_sessions WHERE tenant_id = 'cccccccc-0000-0000-0000-000000000001';
DELETE FROM user_profiles WHERE tenant_id = 'cccccccc-0000-0000-0000-000000000001';

INSERT INTO user_profiles (id, email, full_name, tenant_id, password_hash)
SELECT md5('large-user-' || i)::uuid, format('large%s@bench.example', lpad(i::text, 4, '0')),
       format('Large User %s', i), 'cccccccc-0000-0000-0000-000000000001', :'hash'
FROM generate_series(1, :users) AS i;

-- 10 products per user
INSERT INTO products (id, user_id, tenant_id, name, description, status, created_at, updated_at)
SELECT md5(format('large-product-%s-%s', i, k))::uuid, md5('large-user-' || i)::uuid,
       'cccccccc-0000-0000-0000-000000000001', format('Product %s of user %s', k, i),
       'A product of the large benchmark tenant with a description of typical length.',
       (ARRAY['ideation', 'build', 'operate'])[1 + k % 3],
       now() - make_interval(mins => i * 17 + k), now() - make_interval(mins => i * 17 + k)
FROM generate_series(1, :users) AS i, generate_series(1, 10) AS k;

INSERT INTO product_shares (product_id, tenant_id, shared_with_user_id, shared_by_user_id,
			    permission)
SELECT md5(format('large-product-%s-%s', i, s.k))::uuid, 'cccccccc-0000-0000-0000-000000000001',
       md5('large-user-' || (1 + (i - 1 + s.k) % :users))::uuid, md5('large-user-' || i)::uuid,
       s.perm
FROM generate_series(1, :users) AS i, (VALUES (1, 'view'), (2, 'edit')) AS s(k, perm);

-- 2 conversation sessions per product, 50 messages each
INSERT INTO conversation_sessions (id, user_id, product_id, tenant_id, title, created_at,
				   updated_at)
SELECT md5(format('large-session-%s-%s', p.id, c))::uuid, p.user_id, p.id, p.tenant_id,
       'Product Lifecycle Session', p.created_at, p.created_at
FROM products p, generate_series(1, 2) AS c
WHERE p.tenant_id = 'cccccccc-0000-0000-0000-000000000001';

INSERT INTO conversation_history (session_id, product_id, tenant_id, message_type, agent_name,
				  agent_role, content, created_at)
SELECT cs.id, cs.product_id, cs.tenant_id,
       CASE WHEN m % 2 = 1 THEN 'user' ELSE 'agent' END,
       CASE WHEN m % 2 = 0 THEN 'Research Agent' END, CASE WHEN m % 2 = 0 THEN 'research' END,
       'Message ' || m || ' about the market, the users and the roadmap of this product.',
       cs.created_at + make_interval(secs => m)
FROM conversation_sessions cs, generate_series(1, 50) AS m
WHERE cs.tenant_id = 'cccccccc-0000-0000-0000-000000000001';

-- 10 knowledge articles per product
INSERT INTO knowledge_articles (product_id, tenant_id, title, content, source, created_at)
SELECT p.id, p.tenant_id, (ARRAY['Roadmap', 'Pricing notes', 'Architecture', 'Research',
				  'Launch plan'])[1 + a % 5] || ' ' || a,
       (ARRAY['The roadmap lists the milestones of the next two quarters.',
	      'Three tiers; the enterprise tier ships after general availability.',
	      'Services talk through a queue; every request is idempotent.',
	      'Interviews with forty product managers about their planning tools.',
	      'The launch plan covers pricing, documentation and the sales kit.'])[1 + a % 5]
	|| ' Article ' || a || ' of product ' || p.name || '.',
       'manual', p.created_at + make_interval(secs => a)
FROM products p, generate_series(1, 10) AS a
WHERE p.tenant_id = 'cccccccc-0000-0000-0000-000000000001';

-- 50 login sessions per user, one in ten revoked
INSERT INTO user_sessions (user_id, tenant_id, created_at, expires_at, revoked_at)
SELECT md5('large-user-' || i)::uuid, 'cccccccc-0000-0000-0000-000000000001',
       now() - make_interval(hours => s), now() - make_interval(hours => s) + interval '7 days',
       CASE WHEN s % 10 = 0 THEN now() END
FROM generate_series(1, :users) AS i, generate_series(1, 50) AS s;
COMMIT;

ANALYZE user_profiles;
ANALYZE products;
ANALYZE product_shares;
ANALYZE conversation_sessions;
ANALYZE conversation_history;
ANALYZE knowledge_articles;
ANALYZE user_sessions;
