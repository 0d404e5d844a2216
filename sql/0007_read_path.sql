-- 0007_read_path.sql - the read path of issue 17 (bench/products/RESULTS.md).
--
-- Applied by `ideaforgectl migrate` in its own transaction (no transaction control here).
--
-- ideaforge-api keeps, per worker, the answers of GET /api/products and /api/products/{id}
-- (app/pcache.c). An answer is used only under the tenant version its request read from Redis,
-- which every write through the API raises before it answers (read-your-writes). Writes that do
-- not go through the API (ideaforgectl, SQL run by an operator, another release during a rolling
-- deploy, agentd) raise nothing there: these triggers announce every change of what those
-- answers show, by tenant, on channel ideaforge_products, and each worker's listener drops its
-- answers of that tenant when one arrives. pg_notify sends once per distinct payload per
-- transaction, at commit, so a bulk change costs one notification per tenant.
--
-- Indexes: the figures ask for none. With the statements of this change every read statement
-- uses existing indexes at both sizes (no sequential scan; bench/products/explain.sh).

CREATE FUNCTION ideaforge_products_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('ideaforge_products', '*'); -- TRUNCATE: every tenant
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('ideaforge_products', OLD.tenant_id::text);
  ELSE
    PERFORM pg_notify('ideaforge_products', NEW.tenant_id::text);
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
      PERFORM pg_notify('ideaforge_products', OLD.tenant_id::text);
    END IF;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER products_changed AFTER INSERT OR UPDATE OR DELETE ON products
  FOR EACH ROW EXECUTE FUNCTION ideaforge_products_changed();
CREATE TRIGGER products_truncated AFTER TRUNCATE ON products
  FOR EACH STATEMENT EXECUTE FUNCTION ideaforge_products_changed();
CREATE TRIGGER product_shares_changed AFTER INSERT OR UPDATE OR DELETE ON product_shares
  FOR EACH ROW EXECUTE FUNCTION ideaforge_products_changed();
CREATE TRIGGER product_shares_truncated AFTER TRUNCATE ON product_shares
  FOR EACH STATEMENT EXECUTE FUNCTION ideaforge_products_changed();
-- the owner's name and email are in every answer; a login (last_login_at) changes neither
CREATE TRIGGER user_profiles_changed AFTER UPDATE OF email, full_name, tenant_id ON user_profiles
  FOR EACH ROW EXECUTE FUNCTION ideaforge_products_changed();
