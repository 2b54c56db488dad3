package dev.edgekit.bench.core;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Where the runtime actually put the model's ops: how many each backend (a LiteRT delegate, an ONNX
 * Runtime execution provider, or the runtime's own CPU kernels) took, read from the runtime's own
 * account of it, not from what was requested. The accelerator truth of a result comes from here.
 */
public final class Placement {
    /** Ops left on the runtime's built-in CPU kernels (no delegate took them). */
    public static final String BUILTIN = "builtin";
    /** At most this many backends or op types are kept: the file is read back by the host. */
    static final int MAX_ENTRIES = 64;

    // tflite/core/subgraph.cc logs this when a delegate takes nodes; on Android at INFO under the
    // tag "tflite", in production builds too, "for diagnosing delegation success"
    private static final Pattern REPLACING = Pattern.compile(
            "Replacing (\\d+) out of (\\d+) node\\(s\\) with delegate \\(([^)]{1,120})\\) node, "
                    + "yielding (\\d+) partitions for subgraph (\\d+)");

    public final String source;
    public final int totalOps;
    public final Map<String, Integer> ops;
    public final Map<String, Integer> partitions;
    /** Per op type, the summed kernel time of one profiled run (ONNX Runtime's profiler); may be empty. */
    public final Map<String, Double> opTimesMs;

    public Placement(String source, int totalOps, Map<String, Integer> ops, Map<String, Integer> partitions,
            Map<String, Double> opTimesMs) {
        this.source = source;
        this.totalOps = totalOps;
        this.ops = ops;
        this.partitions = partitions;
        this.opTimesMs = opTimesMs;
    }

    /** The kind of hardware a backend named by its runtime runs on: xnnpack, gpu, npu, nnapi or cpu. */
    public static String kind(String backend) {
        String b = backend.toLowerCase(Locale.ROOT);
        if (b.contains("xnnpack")) {
            return "xnnpack";
        }
        if (b.contains("nnapi")) {
            return "nnapi"; // NNAPI picks GPU or NPU itself (the app disables its CPU reference)
        }
        if (b.contains("gpu") || b.contains("opencl") || b.contains("vulkan")) {
            return "gpu";
        }
        if (b.contains("npu") || b.contains("dispatch") || b.contains("qnn") || b.contains("neuron")) {
            return "npu";
        }
        return "cpu";
    }

    /**
     * The share of the model's ops on the hardware the config asked for: for "cpu" the share on
     * XNNPACK (the rest runs on slower built-in kernels), for "gpu"/"npu" the share on that
     * accelerator or on NNAPI. Null when the runtime gave no op count.
     */
    public Double fraction(String accelerator) {
        if (totalOps <= 0) {
            return null;
        }
        int n = 0;
        for (Map.Entry<String, Integer> e : ops.entrySet()) {
            String k = kind(e.getKey());
            boolean on = accelerator.equals("cpu") ? k.equals("xnnpack")
                    : k.equals(accelerator) || k.equals("nnapi");
            if (on) {
                n += e.getValue();
            }
        }
        return Math.min(1.0, (double) n / totalOps);
    }

    /**
     * From the runtime's log lines (the app's own logcat, tag tflite): the delegation of subgraph 0 by
     * each delegate in turn. A later delegate sees the graph the earlier ones left (their nodes plus
     * one node per delegated partition), so every count is taken against the first line's total.
     * Null when no delegate took anything (the log then says nothing).
     */
    public static Placement fromTfliteLog(List<String> lines) {
        Map<String, Integer> ops = new LinkedHashMap<>();
        Map<String, Integer> parts = new LinkedHashMap<>();
        int total = -1;
        for (String line : lines) {
            Matcher m = REPLACING.matcher(line);
            if (!m.find() || !m.group(5).equals("0")) {
                continue;
            }
            String delegate = m.group(3);
            if (total < 0 || ops.containsKey(delegate)) {
                // a delegate seen again: a new model was built in this process; the last one counts
                ops.clear();
                parts.clear();
                total = Integer.parseInt(m.group(2));
            }
            if (ops.size() >= MAX_ENTRIES) {
                continue;
            }
            ops.put(delegate, Integer.parseInt(m.group(1)));
            parts.put(delegate, Integer.parseInt(m.group(4)));
        }
        if (total < 0) {
            return null;
        }
        int delegated = 0;
        for (int n : ops.values()) {
            delegated += n;
        }
        ops.put(BUILTIN, Math.max(0, total - delegated));
        return new Placement("tflite_log", total, ops, parts, new LinkedHashMap<>());
    }

    /**
     * From ONNX Runtime's profile (the JSON its profiler writes): every node event names the
     * execution provider that ran it and its kernel time. Nodes a provider fused count once.
     */
    public static Placement fromOrtProfile(String json) throws ProtocolException {
        JSONArray events;
        try {
            events = new JSONArray(json);
        } catch (JSONException | StackOverflowError e) {
            throw new ProtocolException("ONNX Runtime profile: not a JSON array of events");
        }
        Map<String, Integer> ops = new LinkedHashMap<>();
        Map<String, Double> times = new LinkedHashMap<>();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < events.length(); i++) {
            JSONObject e = events.optJSONObject(i);
            if (e == null || !"Node".equals(e.optString("cat")) || !e.optString("name").endsWith("_kernel_time")) {
                continue;
            }
            JSONObject args = e.optJSONObject("args");
            String provider = args == null ? "" : args.optString("provider", "");
            String op = args == null ? "" : args.optString("op_name", "");
            if (provider.isEmpty() || op.isEmpty()) {
                continue;
            }
            if (seen.add(e.optString("name")) && (ops.containsKey(provider) || ops.size() < MAX_ENTRIES)) {
                ops.merge(provider, 1, Integer::sum);
            }
            if (times.containsKey(op) || times.size() < MAX_ENTRIES) {
                times.merge(op, Math.max(0, e.optDouble("dur", 0)) / 1000.0, Double::sum);
            }
        }
        int total = 0;
        for (int n : ops.values()) {
            total += n;
        }
        return new Placement("ort_profile", total, ops, new LinkedHashMap<>(), times);
    }

    public JSONObject toJson() {
        JSONObject o = new JSONObject();
        try {
            o.put("source", source).put("total_ops", totalOps);
            o.put("ops", new JSONObject(ops)).put("partitions", new JSONObject(partitions));
            JSONObject t = new JSONObject();
            for (Map.Entry<String, Double> e : opTimesMs.entrySet()) {
                t.put(e.getKey(), Math.round(e.getValue() * 1e4) / 1e4);
            }
            o.put("op_times_ms", t);
        } catch (JSONException e) {
            throw new IllegalStateException(e);
        }
        return o;
    }
}
