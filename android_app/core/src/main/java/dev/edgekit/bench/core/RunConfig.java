package dev.edgekit.bench.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;
import org.json.JSONArray;
import org.json.JSONObject;

/** {@code config.json}: what to run and how, validated field by field. */
public final class RunConfig {
    private static final Pattern SHA256 = Pattern.compile("^[0-9a-f]{64}$");

    public final String runId;
    public final String model;
    public final String modelSha256;
    public final long modelSize;
    public final List<TensorSpec> inputs;
    public final String accelerator;
    public final int threads;
    public final int warmup;
    public final int runs;
    public final String engine;
    public final String gpuPrecision;
    /** Per-op profile on request (ONNX Runtime's profiler, ExecuTorch's ETDump), after the timed runs. */
    public final boolean profile;

    private RunConfig(String runId, String model, String modelSha256, long modelSize, List<TensorSpec> inputs,
            String accelerator, int threads, int warmup, int runs, String engine, String gpuPrecision,
            boolean profile) {
        this.runId = runId;
        this.model = model;
        this.modelSha256 = modelSha256;
        this.modelSize = modelSize;
        this.inputs = Collections.unmodifiableList(inputs);
        this.accelerator = accelerator;
        this.threads = threads;
        this.warmup = warmup;
        this.runs = runs;
        this.engine = engine;
        this.gpuPrecision = gpuPrecision;
        this.profile = profile;
    }

    private static String optString(JSONObject o, String key, String dflt, String where) throws ProtocolException {
        return o.has(key) ? Json.string(o, key, where) : dflt;
    }

    private static long optInt(JSONObject o, String key, long dflt, String where) throws ProtocolException {
        return o.has(key) ? Json.integer(o, key, where) : dflt;
    }

    private static void oneOf(String value, String field, String... allowed) throws ProtocolException {
        for (String a : allowed) {
            if (a.equals(value)) {
                return;
            }
        }
        throw new ProtocolException(field + " '" + value + "' not in " + String.join(", ", allowed));
    }

    /** Parse and validate {@code config.json} text. */
    public static RunConfig parse(String text) throws ProtocolException {
        String where = "config.json";
        JSONObject o = Json.parse(text, where);
        Json.schema(o, Protocol.CONFIG_SCHEMA, where);
        String runId = Json.string(o, "run_id", where);
        if (!Protocol.RUN_ID.matcher(runId).matches()) {
            throw new ProtocolException("run_id '" + runId + "' must match " + Protocol.RUN_ID.pattern());
        }
        String model = Json.string(o, "model", where);
        if (!Protocol.FILE_NAME.matcher(model).matches()) {
            throw new ProtocolException("model file name '" + model + "' must be a plain name");
        }
        String sha = Json.string(o, "model_sha256", where);
        if (!SHA256.matcher(sha).matches()) {
            throw new ProtocolException("model_sha256 must be 64 lowercase hex digits");
        }
        long size = Json.integer(o, "model_size", where);
        if (size <= 0) {
            throw new ProtocolException("model_size must be positive");
        }
        JSONArray list = Json.array(o, "inputs", where);
        if (list.length() == 0) {
            throw new ProtocolException("inputs must list at least one tensor file");
        }
        List<TensorSpec> inputs = new ArrayList<>();
        for (int i = 0; i < list.length(); i++) {
            inputs.add(TensorSpec.fromJson(list.opt(i), where + " inputs[" + i + "]"));
        }
        String accelerator = optString(o, "accelerator", "cpu", where);
        oneOf(accelerator, "accelerator", "cpu", "gpu", "npu");
        String engine = optString(o, "engine", "compiled_model", where);
        oneOf(engine, "engine", "compiled_model", "interpreter", "onnxruntime", "executorch");
        String gpuPrecision = optString(o, "gpu_precision", "fp32", where);
        oneOf(gpuPrecision, "gpu_precision", "fp32", "fp16");
        long threads = optInt(o, "threads", 4, where);
        if (threads < 1 || threads > 64) {
            throw new ProtocolException("threads must be between 1 and 64");
        }
        long warmup = optInt(o, "warmup", 10, where);
        long runs = optInt(o, "runs", 100, where);
        if (warmup < 0 || runs < 1 || runs > 100_000) {
            throw new ProtocolException("warmup must be >= 0 and runs between 1 and 100000");
        }
        Object profile = o.opt("profile");
        if (profile != null && !(profile instanceof Boolean)) {
            throw new ProtocolException("profile must be true or false");
        }
        return new RunConfig(runId, model, sha, size, inputs, accelerator, (int) threads, (int) warmup, (int) runs,
                engine, gpuPrecision, Boolean.TRUE.equals(profile));
    }
}
