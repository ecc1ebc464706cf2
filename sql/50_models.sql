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

COMMENT ON FUNCTION moe_deploy(text, bigint) IS
    'Point a name at a stored model (any model, by id: trained, cross-validated, swept or imported); recorded in moe.deployment_history';

-- The model the name pointed at before its current one was deployed
-- (rollbacks skipped, so repeated calls walk further back).
CREATE FUNCTION moe_rollback(name text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current_id bigint;
    target_id bigint;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT d.model_id INTO current_id FROM moe.deployments d WHERE d.name = moe_rollback.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no deployment named "%"', name USING ERRCODE = 'undefined_object',
              HINT = 'moe.deployments lists the names; moe.deployment_history what they pointed at.';
    END IF;
    SELECT h.previous_model_id INTO target_id
      FROM moe.deployment_history h
     WHERE h.name = moe_rollback.name AND h.model_id = current_id AND h.action = 'deploy'
     ORDER BY h.id DESC LIMIT 1;
    IF target_id IS NULL THEN
        RAISE EXCEPTION 'deployment "%" has no earlier model to roll back to', name
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'moe.deployment_history lists what the name pointed at; moe_deploy() points it at any stored model.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM moe.models m WHERE m.id = target_id) THEN
        RAISE EXCEPTION 'model %, which "%" pointed at before model %, has been dropped', target_id, name, current_id
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'moe_deploy() points the name at any stored model.';
    END IF;
    UPDATE moe.deployments d SET model_id = target_id, updated_at = now(), updated_by = current_user
     WHERE d.name = moe_rollback.name;
    UPDATE moe.deployment_history h SET action = 'rollback'
     WHERE h.id = (SELECT max(x.id) FROM moe.deployment_history x WHERE x.name = moe_rollback.name);
    RETURN target_id;
END;
$$;
COMMENT ON FUNCTION moe_rollback(text) IS
    'Point a name back at the model it pointed at before its current one; returns that model''s id';

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

COMMENT ON FUNCTION moe_export_model(bigint, text) IS
    'Write model id''s checkpoint to a server file; returns its size in bytes';
COMMENT ON FUNCTION moe_export_model(text, text) IS
    'Write a deployed model''s checkpoint to a server file; returns its size in bytes';
COMMENT ON FUNCTION moe_import_model(text, text, boolean) IS
    'Store a checkpoint file as a new model (deployed under name unless deploy is false); returns its id';
COMMENT ON FUNCTION moe_model_info(bigint) IS
    'What a stored checkpoint holds; params_md5 fingerprints the weights alone';
