-- bench/products/explain.sql - EXPLAIN (ANALYZE, BUFFERS) of every read statement of the request
-- paths issue 17 names (login, session check, product list and get, history, knowledge list and
-- search), with the statement texts exactly as ideaforge-api sends them (taken from the
-- PostgreSQL log). Run by bench/products/explain.sh for one user of the small and one of the
-- large tenant: psql -v tid=... -v uid=... -v pid=... -v sid=... -v email=... -f explain.sql
\set ON_ERROR_STOP 1
\pset pager off
-- The limits: the API's defaults unless explain.sh passes others (-v name=N): its second pass
-- gives both tenants the row count the small tenant's answer had, so that the two answers are
-- the same size.
\if :{?lim_history_product} \else \set lim_history_product 100 \endif
\if :{?lim_history_user} \else \set lim_history_user 100 \endif
\if :{?lim_conversations_product} \else \set lim_conversations_product 50 \endif
\if :{?lim_articles_product} \else \set lim_articles_product 50 \endif
\if :{?lim_articles_visible} \else \set lim_articles_visible 50 \endif
\if :{?lim_search_product} \else \set lim_search_product 50 \endif
\if :{?lim_search_visible} \else \set lim_search_visible 50 \endif
\echo '=== login'
PREPARE login AS SELECT u.id, u.password_hash, u.is_active, u.tenant_id, u.email, u.full_name, t.name FROM user_profiles u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.email = $1;
\o /dev/null
EXECUTE login(:'email');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE login(:'email');
DEALLOCATE login;
\echo '=== session_check'
PREPARE session_check AS SELECT CASE WHEN NOT u.is_active THEN 'inactive' WHEN s.revoked_at IS NOT NULL OR s.expires_at <= now() THEN 'revoked' ELSE 'live' END AS state, json_build_object('id', u.id, 'email', u.email, 'full_name', u.full_name, 'tenant_id', u.tenant_id, 'tenant_name', COALESCE(t.name, 'Default Tenant'), 'persona', u.persona, 'avatar_url', u.avatar_url, 'mckinsey_subject', u.mckinsey_subject) AS me FROM user_sessions s JOIN user_profiles u ON u.id = s.user_id AND u.tenant_id = s.tenant_id LEFT JOIN tenants t ON t.id = u.tenant_id WHERE s.id = $1 AND s.user_id = $2 AND s.tenant_id = $3;
\o /dev/null
EXECUTE session_check(:'sid', :'uid', :'tid');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE session_check(:'sid', :'uid', :'tid');
DEALLOCATE session_check;
\echo '=== list'
PREPARE list AS SELECT json_build_object('products', coalesce(json_agg(json_build_object('id', x.id, 'name', x.name, 'description', x.description, 'status', x.status, 'user_id', x.user_id, 'owner_email', u.email, 'owner_name', u.full_name, 'created_at', x.created_at, 'updated_at', x.updated_at, 'access_level', x.access_level) ORDER BY x.updated_at DESC, x.id), '[]'::json)) FROM ((SELECT p.id, p.name, p.description, p.status, p.user_id, p.created_at, p.updated_at, 'owner'::text AS access_level FROM products p WHERE p.tenant_id = $1 AND p.user_id = $2) UNION ALL (SELECT p.id, p.name, p.description, p.status, p.user_id, p.created_at, p.updated_at, s.permission FROM product_shares s JOIN products p ON p.id = s.product_id AND p.tenant_id = s.tenant_id WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1 AND p.user_id <> $2) ORDER BY updated_at DESC, id LIMIT $3) x JOIN LATERAL (SELECT u.email, u.full_name FROM user_profiles u WHERE u.id = x.user_id OFFSET 0) u ON true;
\o /dev/null
EXECUTE list(:'tid', :'uid', 500);
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE list(:'tid', :'uid', 500);
DEALLOCATE list;
\echo '=== get'
PREPARE get AS SELECT json_build_object('id', p.id, 'name', p.name, 'description', p.description, 'status', p.status, 'user_id', p.user_id, 'tenant_id', p.tenant_id, 'owner_email', u.email, 'owner_name', u.full_name, 'created_at', p.created_at, 'updated_at', p.updated_at, 'metadata', p.metadata) FROM products p JOIN user_profiles u ON u.id = p.user_id WHERE p.id = $1 AND p.tenant_id = $2 AND (p.user_id = $3 OR EXISTS (SELECT 1 FROM product_shares vs_ WHERE vs_.product_id = p.id AND vs_.shared_with_user_id = $3));
\o /dev/null
EXECUTE get(:'pid', :'tid', :'uid');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE get(:'pid', :'tid', :'uid');
DEALLOCATE get;
\echo '=== history_product'
PREPARE history_product AS SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $3 AND p.tenant_id = $1 AND (p.user_id = $2 OR EXISTS (SELECT 1 FROM product_shares vs_ WHERE vs_.product_id = p.id AND vs_.shared_with_user_id = $2))) THEN (SELECT json_build_object('messages', coalesce(json_agg(json_build_object('id', h.id, 'session_id', h.session_id, 'product_id', h.product_id, 'phase_id', h.phase_id, 'message_type', h.message_type, 'agent_name', h.agent_name, 'agent_role', h.agent_role, 'content', h.content, 'formatted_content', h.formatted_content, 'parent_message_id', h.parent_message_id, 'interaction_metadata', h.interaction_metadata, 'created_at', h.created_at) ORDER BY h.created_at, h.id), '[]'::json)) FROM (SELECT * FROM conversation_history h WHERE h.tenant_id = $1 AND h.product_id = $3 AND ($4::uuid IS NULL OR h.session_id = $4) ORDER BY h.created_at DESC, h.id DESC LIMIT $5) h) END;
\o /dev/null
EXECUTE history_product(:'tid', :'uid', :'pid', NULL, :lim_history_product);
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE history_product(:'tid', :'uid', :'pid', NULL, :lim_history_product);
DEALLOCATE history_product;
\echo '=== history_user'
PREPARE history_user AS SELECT json_build_object('messages', coalesce(json_agg(json_build_object('id', h.id, 'session_id', h.session_id, 'product_id', h.product_id, 'phase_id', h.phase_id, 'message_type', h.message_type, 'agent_name', h.agent_name, 'agent_role', h.agent_role, 'content', h.content, 'formatted_content', h.formatted_content, 'parent_message_id', h.parent_message_id, 'interaction_metadata', h.interaction_metadata, 'created_at', h.created_at) ORDER BY h.created_at, h.id), '[]'::json)) FROM (SELECT h.* FROM conversation_history h WHERE h.id IN (SELECT x.id FROM ((SELECT h.id FROM conversation_sessions cs JOIN conversation_history h ON h.session_id = cs.id WHERE cs.user_id = $2 AND h.tenant_id = $1 AND ($3::uuid IS NULL OR h.session_id = $3) ORDER BY h.created_at DESC, h.id DESC LIMIT $4) UNION ALL (SELECT h.id FROM conversation_history h WHERE h.product_id IN (SELECT p.id FROM products p WHERE p.tenant_id = $1 AND p.user_id = $2 UNION ALL SELECT s.product_id FROM product_shares s WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1) AND h.tenant_id = $1 AND ($3::uuid IS NULL OR h.session_id = $3) ORDER BY h.created_at DESC, h.id DESC LIMIT $4)) x) ORDER BY h.created_at DESC, h.id DESC LIMIT $4) h;
\o /dev/null
EXECUTE history_user(:'tid', :'uid', NULL, :lim_history_user);
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE history_user(:'tid', :'uid', NULL, :lim_history_user);
DEALLOCATE history_user;
\echo '=== conversations_product'
PREPARE conversations_product AS SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $4 AND p.tenant_id = $1 AND (p.user_id = $2 OR EXISTS (SELECT 1 FROM product_shares vs_ WHERE vs_.product_id = p.id AND vs_.shared_with_user_id = $2))) THEN (SELECT json_build_object('conversations', coalesce(json_agg(json_build_object('id', x.id, 'message_type', x.message_type, 'agent_name', x.agent_name, 'agent_role', x.agent_role, 'content', x.content, 'formatted_content', x.formatted_content, 'created_at', x.created_at, 'session_title', x.session_title, 'product_id', x.product_id, 'product_name', x.product_name) ORDER BY x.created_at DESC, x.id DESC), '[]'::json), 'count', count(x.id)) FROM (SELECT h.id, h.message_type, h.agent_name, h.agent_role, h.content, h.formatted_content, h.created_at, cs.title AS session_title, h.product_id, p.name AS product_name FROM conversation_history h JOIN conversation_sessions cs ON cs.id = h.session_id LEFT JOIN products p ON p.id = h.product_id WHERE h.tenant_id = $1 AND h.product_id = $4 ORDER BY h.created_at DESC, h.id DESC LIMIT $3) x) END;
\o /dev/null
EXECUTE conversations_product(:'tid', :'uid', :lim_conversations_product, :'pid');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE conversations_product(:'tid', :'uid', :lim_conversations_product, :'pid');
DEALLOCATE conversations_product;
\echo '=== articles_product'
PREPARE articles_product AS SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $4 AND p.tenant_id = $1 AND (p.user_id = $2 OR EXISTS (SELECT 1 FROM product_shares vs_ WHERE vs_.product_id = p.id AND vs_.shared_with_user_id = $2))) THEN (SELECT json_build_object('articles', coalesce(json_agg(json_build_object('id', a.id, 'product_id', a.product_id, 'title', a.title, 'content', a.content, 'source', a.source, 'metadata', a.metadata, 'created_at', a.created_at) ORDER BY a.created_at DESC, a.id), '[]'::json)) FROM (SELECT a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at FROM knowledge_articles a WHERE a.tenant_id = $1 AND a.product_id = $4 ORDER BY a.created_at DESC, a.id LIMIT $3) a) END;
\o /dev/null
EXECUTE articles_product(:'tid', :'uid', :lim_articles_product, :'pid');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE articles_product(:'tid', :'uid', :lim_articles_product, :'pid');
DEALLOCATE articles_product;
\echo '=== articles_visible'
PREPARE articles_visible AS SELECT json_build_object('articles', coalesce(json_agg(json_build_object('id', a.id, 'product_id', a.product_id, 'title', a.title, 'content', a.content, 'source', a.source, 'metadata', a.metadata, 'created_at', a.created_at) ORDER BY a.created_at DESC, a.id), '[]'::json)) FROM (SELECT a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at FROM knowledge_articles a WHERE a.tenant_id = $1 AND a.product_id IN (SELECT p.id FROM products p WHERE p.tenant_id = $1 AND p.user_id = $2 UNION ALL SELECT s.product_id FROM product_shares s WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1) ORDER BY a.created_at DESC, a.id LIMIT $3) a;
\o /dev/null
EXECUTE articles_visible(:'tid', :'uid', :lim_articles_visible);
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE articles_visible(:'tid', :'uid', :lim_articles_visible);
DEALLOCATE articles_visible;
\echo '=== search_product'
PREPARE search_product AS SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $4 AND p.tenant_id = $1 AND (p.user_id = $2 OR EXISTS (SELECT 1 FROM product_shares vs_ WHERE vs_.product_id = p.id AND vs_.shared_with_user_id = $2))) THEN (SELECT json_build_object('articles', coalesce(json_agg(json_build_object('id', a.id, 'product_id', a.product_id, 'title', a.title, 'content', a.content, 'source', a.source, 'metadata', a.metadata, 'created_at', a.created_at) ORDER BY a.tier, a.rank DESC, a.created_at DESC, a.id), '[]'::json)) FROM (SELECT * FROM (SELECT a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at, ts_rank(a.search_vector, (CASE WHEN to_tsvector('english', $5) = ''::tsvector THEN NULL::tsquery ELSE websearch_to_tsquery('english', $5) END)) AS rank, 0 AS tier FROM knowledge_articles a WHERE a.tenant_id = $1 AND a.product_id = $4 AND a.search_vector @@ (CASE WHEN to_tsvector('english', $5) = ''::tsvector THEN NULL::tsquery ELSE websearch_to_tsquery('english', $5) END) UNION ALL SELECT a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at, 0, 1 FROM knowledge_articles a WHERE a.tenant_id = $1 AND a.product_id = $4 AND (a.search_vector @@ (CASE WHEN to_tsvector('english', $5) = ''::tsvector THEN NULL::tsquery ELSE websearch_to_tsquery('english', $5) END)) IS NOT TRUE AND (a.title ILIKE $6 OR left(a.content, 4096) ILIKE $6)) m ORDER BY tier, rank DESC, created_at DESC, id LIMIT $3) a) END;
\o /dev/null
EXECUTE search_product(:'tid', :'uid', :lim_search_product, :'pid', 'roadmap', '%roadmap%');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_product(:'tid', :'uid', :lim_search_product, :'pid', 'roadmap', '%roadmap%');
DEALLOCATE search_product;
\echo '=== search_visible'
PREPARE search_visible AS SELECT json_build_object('articles', coalesce(json_agg(json_build_object('id', a.id, 'product_id', a.product_id, 'title', a.title, 'content', a.content, 'source', a.source, 'metadata', a.metadata, 'created_at', a.created_at) ORDER BY a.tier, a.rank DESC, a.created_at DESC, a.id), '[]'::json)) FROM (SELECT * FROM (SELECT a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at, ts_rank(a.search_vector, (CASE WHEN to_tsvector('english', $4) = ''::tsvector THEN NULL::tsquery ELSE websearch_to_tsquery('english', $4) END)) AS rank, 0 AS tier FROM knowledge_articles a WHERE a.tenant_id = $1 AND a.product_id IN (SELECT p.id FROM products p WHERE p.tenant_id = $1 AND p.user_id = $2 UNION ALL SELECT s.product_id FROM product_shares s WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1) AND a.search_vector @@ (CASE WHEN to_tsvector('english', $4) = ''::tsvector THEN NULL::tsquery ELSE websearch_to_tsquery('english', $4) END) UNION ALL SELECT a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at, 0, 1 FROM knowledge_articles a WHERE a.tenant_id = $1 AND a.product_id IN (SELECT p.id FROM products p WHERE p.tenant_id = $1 AND p.user_id = $2 UNION ALL SELECT s.product_id FROM product_shares s WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1) AND (a.search_vector @@ (CASE WHEN to_tsvector('english', $4) = ''::tsvector THEN NULL::tsquery ELSE websearch_to_tsquery('english', $4) END)) IS NOT TRUE AND (a.title ILIKE $5 OR left(a.content, 4096) ILIKE $5)) m ORDER BY tier, rank DESC, created_at DESC, id LIMIT $3) a;
\o /dev/null
EXECUTE search_visible(:'tid', :'uid', :lim_search_visible, 'roadmap', '%roadmap%');
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE search_visible(:'tid', :'uid', :lim_search_visible, 'roadmap', '%roadmap%');
DEALLOCATE search_visible;
