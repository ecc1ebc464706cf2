-- ---------------------------------------------------------------------------
-- Model and entity caches (docs/scoring.md)

CREATE FUNCTION moe.forget_cached_model() RETURNS trigger
AS 'MODULE_PATHNAME', 'moe_forget_model_trigger'
LANGUAGE C;
CREATE TRIGGER forget_cached_model AFTER DELETE ON moe.models
    FOR EACH ROW EXECUTE FUNCTION moe.forget_cached_model();
CREATE TRIGGER forget_cached_models AFTER TRUNCATE ON moe.models
    FOR EACH STATEMENT EXECUTE FUNCTION moe.forget_cached_model();

CREATE FUNCTION moe_cache()
RETURNS TABLE (model_id bigint, scope text, bytes bigint, loads bigint, hits bigint, pins integer,
               last_use timestamptz, entity_parts bigint, entity_bytes bigint,
               entity_parts_copied bigint, shared_entity_parts bigint)
AS 'MODULE_PATHNAME', 'moe_cache_sql'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION moe_cache() IS
    'Cached models: shared (once per server) and this connection''s own copies, with loads, hits, pins and drug and protein parts (this connection''s, how many of them it copied from the shared cache, and the shared cache''s)';

CREATE FUNCTION moe_cache_clear(scope text DEFAULT 'connection')
RETURNS void
AS 'MODULE_PATHNAME', 'moe_cache_clear_sql'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION moe_cache_clear(text) IS
    'Empty caches: connection (this connection''s models and parts), database (also this database''s shared entries) or server (every shared entry)';
REVOKE ALL ON FUNCTION moe_cache_clear(text) FROM PUBLIC;

COMMENT ON FUNCTION moe.forget_cached_model() IS
    'Trigger: a dropped model leaves every cache at commit';
