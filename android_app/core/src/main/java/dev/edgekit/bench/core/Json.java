package dev.edgekit.bench.core;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** Strict readers over org.json: org.json coerces "4" and true into numbers; the protocol does not. */
final class Json {
    private Json() {}

    static JSONObject parse(String text, String where) throws ProtocolException {
        try {
            return new JSONObject(text);
        } catch (JSONException e) {
            throw new ProtocolException(where + ": not valid JSON (" + e.getMessage() + ")", e);
        }
    }

    static Object require(JSONObject o, String key, String where) throws ProtocolException {
        if (!o.has(key) || o.isNull(key)) {
            throw new ProtocolException(where + ": missing field '" + key + "'");
        }
        try {
            return o.get(key);
        } catch (JSONException e) {
            throw new ProtocolException(where + ": field '" + key + "' unreadable", e);
        }
    }

    static String string(JSONObject o, String key, String where) throws ProtocolException {
        Object v = require(o, key, where);
        if (!(v instanceof String)) {
            throw new ProtocolException(where + ": field '" + key + "' has the wrong type");
        }
        return (String) v;
    }

    static long integer(JSONObject o, String key, String where) throws ProtocolException {
        Object v = require(o, key, where);
        if (!(v instanceof Integer || v instanceof Long)) {
            throw new ProtocolException(where + ": field '" + key + "' must be an integer");
        }
        return ((Number) v).longValue();
    }

    static double number(JSONObject o, String key, String where) throws ProtocolException {
        Object v = require(o, key, where);
        if (!(v instanceof Number)) {
            throw new ProtocolException(where + ": field '" + key + "' must be a number");
        }
        return ((Number) v).doubleValue();
    }

    static JSONArray array(JSONObject o, String key, String where) throws ProtocolException {
        Object v = require(o, key, where);
        if (!(v instanceof JSONArray)) {
            throw new ProtocolException(where + ": field '" + key + "' must be a list");
        }
        return (JSONArray) v;
    }

    static JSONObject object(Object v, String where) throws ProtocolException {
        if (!(v instanceof JSONObject)) {
            throw new ProtocolException(where + ": not an object");
        }
        return (JSONObject) v;
    }

    static void schema(JSONObject o, String schema, String where) throws ProtocolException {
        Object s = o.opt("schema");
        if (!schema.equals(s)) {
            throw new ProtocolException(where + ": schema is " + s + ", expected " + schema);
        }
        Object v = o.opt("schema_version");
        if (!(v instanceof Integer) || (Integer) v != Protocol.VERSION) {
            throw new ProtocolException(where + ": schema_version " + v + " is not " + Protocol.VERSION
                    + "; update the app or edgekit so both speak the same protocol");
        }
    }
}
