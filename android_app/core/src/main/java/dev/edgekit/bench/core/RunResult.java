package dev.edgekit.bench.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** {@code result.json}: raw timings and facts; the host computes every statistic. */
public final class RunResult {
    public String runId = "";
    public String status = "ok";
    public String appVersion = Protocol.APP_VERSION;
    public String engine = "compiled_model";
    public String acceleratorRequested = "cpu";
    public String acceleratorUsed;
    public List<String> availableAccelerators = new ArrayList<>();
    public int threads;
    public Double loadMs;
    public Double firstInferenceMs;
    public double[] timingsMs = new double[0];
    /** Median copy of the input into the engine and of the outputs out of it, per timed run (not in timings). */
    public Double copyInMs;
    public Double copyOutMs;
    public List<TensorSpec> outputs = new ArrayList<>();
    public Map<String, MemorySnapshot> memory = new LinkedHashMap<>();
    public String fallbackReason;
    public String errorKind;
    public String errorMessage;
    public Map<String, Object> device = new LinkedHashMap<>();
    public Map<String, Object> thermal = new LinkedHashMap<>();
    public boolean emulated;
    /** Where the runtime put the ops (null: the runtime gave no account of it). */
    public Placement placement;
    /** A per-op profile file written next to the outputs (ExecuTorch's ETDump), or null. */
    public String profileFile;
    /** Why a requested profile or the placement is missing, or null. */
    public String profileNote;

    private static Object orNull(Object v) {
        return v == null ? JSONObject.NULL : v;
    }

    /** The result.json text (schema first). */
    public String toJson() {
        try {
            JSONObject o = new JSONObject();
            o.put("schema", Protocol.RESULT_SCHEMA).put("schema_version", Protocol.VERSION);
            o.put("run_id", runId).put("status", status).put("app_version", appVersion).put("engine", engine);
            o.put("accelerator_requested", acceleratorRequested).put("accelerator_used", orNull(acceleratorUsed));
            o.put("available_accelerators", new JSONArray(availableAccelerators));
            o.put("threads", threads).put("load_ms", orNull(loadMs)).put("first_inference_ms", orNull(firstInferenceMs));
            JSONArray t = new JSONArray();
            for (double v : timingsMs) {
                t.put(v);
            }
            o.put("timings_ms", t);
            o.put("copy_in_ms", orNull(copyInMs)).put("copy_out_ms", orNull(copyOutMs));
            JSONArray outs = new JSONArray();
            for (TensorSpec s : outputs) {
                outs.put(s.toJson());
            }
            o.put("outputs", outs);
            JSONObject mem = new JSONObject();
            for (Map.Entry<String, MemorySnapshot> e : memory.entrySet()) {
                mem.put(e.getKey(), e.getValue().toJson());
            }
            o.put("memory", mem);
            o.put("fallback_reason", orNull(fallbackReason)).put("error_kind", orNull(errorKind));
            o.put("error_message", orNull(errorMessage));
            o.put("device", new JSONObject(device)).put("thermal", new JSONObject(thermal)).put("emulated", emulated);
            o.put("placement", placement == null ? JSONObject.NULL : placement.toJson());
            o.put("profile_file", orNull(profileFile)).put("profile_note", orNull(profileNote));
            return o.toString(2) + "\n";
        } catch (JSONException e) {
            throw new IllegalStateException("result not serialisable", e);
        }
    }

    private static String optString(JSONObject o, String key) {
        return o.isNull(key) ? null : o.optString(key, null);
    }

    /** Parse and validate result.json text (the same rules as the host's parser). */
    public static RunResult parse(String text) throws ProtocolException {
        String where = "result.json";
        JSONObject o = Json.parse(text, where);
        Json.schema(o, Protocol.RESULT_SCHEMA, where);
        RunResult r = new RunResult();
        r.status = Json.string(o, "status", where);
        if (!r.status.equals("ok") && !r.status.equals("error")) {
            throw new ProtocolException(where + ": status '" + r.status + "' must be 'ok' or 'error'");
        }
        JSONArray t = Json.array(o, "timings_ms", where);
        r.timingsMs = new double[t.length()];
        for (int i = 0; i < t.length(); i++) {
            Object v = t.opt(i);
            if (!(v instanceof Number) || ((Number) v).doubleValue() < 0) {
                throw new ProtocolException(where + ": timings_ms must be non-negative numbers");
            }
            r.timingsMs[i] = ((Number) v).doubleValue();
        }
        if (r.status.equals("ok") && r.timingsMs.length == 0) {
            throw new ProtocolException(where + ": an ok result needs timings_ms");
        }
        r.errorKind = optString(o, "error_kind");
        if (r.status.equals("error") && (r.errorKind == null || r.errorKind.isEmpty())) {
            throw new ProtocolException(where + ": an error result needs error_kind");
        }
        r.runId = Json.string(o, "run_id", where);
        r.appVersion = Json.string(o, "app_version", where);
        r.engine = Json.string(o, "engine", where);
        r.acceleratorRequested = Json.string(o, "accelerator_requested", where);
        r.acceleratorUsed = optString(o, "accelerator_used");
        r.threads = (int) Json.integer(o, "threads", where);
        JSONObject mem = o.optJSONObject("memory");
        if (mem != null) {
            for (java.util.Iterator<String> it = mem.keys(); it.hasNext();) {
                String k = it.next();
                r.memory.put(k, MemorySnapshot.fromJson(mem.opt(k), where + " memory." + k));
            }
        }
        JSONArray outs = o.optJSONArray("outputs");
        if (outs != null) {
            for (int i = 0; i < outs.length(); i++) {
                r.outputs.add(TensorSpec.fromJson(outs.opt(i), where + " outputs[" + i + "]"));
            }
        }
        r.fallbackReason = optString(o, "fallback_reason");
        r.errorMessage = optString(o, "error_message");
        r.copyInMs = o.isNull("copy_in_ms") ? null : o.optDouble("copy_in_ms");
        r.copyOutMs = o.isNull("copy_out_ms") ? null : o.optDouble("copy_out_ms");
        r.emulated = o.optBoolean("emulated", false);
        return r;
    }

    /** An error result for {@code runId}. */
    public static RunResult error(String runId, RunConfig config, String kind, String message) {
        RunResult r = new RunResult();
        r.runId = runId;
        r.status = "error";
        r.errorKind = kind;
        r.errorMessage = message;
        if (config != null) {
            r.engine = config.engine;
            r.acceleratorRequested = config.accelerator;
            r.threads = config.threads;
        }
        r.availableAccelerators = Collections.emptyList();
        return r;
    }
}
