-- ---------------------------------------------------------------------------
-- Managing models

CREATE FUNCTION moe_deploy(name text, model_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR model_id IS NULL THEN
        RAISE EXCEPTION 'name and model_id must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' THEN
        RAISE EXCEPTION 'name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM moe.models m WHERE m.id = model_id) THEN
        RAISE EXCEPTION 'model % does not exist', model_id USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO moe.deployments AS d (name, model_id) VALUES (name, model_id)
    ON CONFLICT ON CONSTRAINT deployments_pkey
    DO UPDATE SET model_id = EXCLUDED.model_id, updated_at = now(), updated_by = current_user;
END;
$$;

CREATE FUNCTION moe_drop_model(model_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'moe_drop_model_sql'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION moe_drop_model(bigint) IS
    'Delete a stored model no name points at; only the role that made it (its members, superusers) may';

CREATE FUNCTION moe_model_info(model bigint)
RETURNS TABLE (model_id bigint, format_version integer, n_params bigint, checkpoint_bytes bigint,
               drug_dim integer, protein_dim integer, experts integer, top_k integer, params_md5 text)
AS 'MODULE_PATHNAME', 'moe_model_info_by_id'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;

CREATE FUNCTION moe_model_info(model text)
RETURNS TABLE (model_id bigint, format_version integer, n_params bigint, checkpoint_bytes bigint,
               drug_dim integer, protein_dim integer, experts integer, top_k integer, params_md5 text)
AS 'MODULE_PATHNAME', 'moe_model_info_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION moe_model_info(text) IS
    'What a stored checkpoint holds; params_md5 fingerprints the weights alone';

CREATE FUNCTION moe_export_model(model bigint, path text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moe_export_model_by_id'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION moe_export_model(model text, path text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moe_export_model_by_name'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION moe_import_model(path text, name text DEFAULT NULL, deploy boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moe_import_model_sql'
LANGUAGE C VOLATILE;

-- Reading and writing server files is for roles that may do so anyway.
REVOKE ALL ON FUNCTION moe_export_model(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION moe_export_model(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION moe_import_model(text, text, boolean) FROM PUBLIC;
