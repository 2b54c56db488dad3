package dev.edgekit.bench.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.Test;

/** Every shared vector in android_app/protocol/vectors, as the app sees it. */
public class ProtocolVectorsTest {
    static Path vectors() {
        return Paths.get(System.getProperty("edgekit.vectors", "protocol/vectors"));
    }

    private static Object parse(JSONObject v) throws Exception {
        byte[] data = Files.readAllBytes(vectors().resolve(v.getString("file")));
        switch (v.getString("kind")) {
            case "config":
                return RunConfig.parse(new String(data, StandardCharsets.UTF_8));
            case "result":
                return RunResult.parse(new String(data, StandardCharsets.UTF_8));
            case "placement_tflite_log":
                return Placement.fromTfliteLog(Arrays.asList(new String(data, StandardCharsets.UTF_8).split("\n")));
            case "placement_ort_profile":
                return Placement.fromOrtProfile(new String(data, StandardCharsets.UTF_8));
            default:
                JSONArray dims = v.getJSONArray("shape");
                int[] shape = new int[dims.length()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = dims.getInt(i);
                }
                return TensorFiles.decode(data, new TensorSpec("t.bin", v.getString("dtype"), shape));
        }
    }

    @Test
    public void everyVectorParsesOrIsRefusedAsIndexed() throws Exception {
        JSONObject index = new JSONObject(new String(Files.readAllBytes(vectors().resolve("index.json")),
                StandardCharsets.UTF_8));
        JSONArray list = index.getJSONArray("vectors");
        assertTrue(list.length() >= 20);
        for (int i = 0; i < list.length(); i++) {
            JSONObject v = list.getJSONObject(i);
            String name = v.getString("file");
            if (v.getBoolean("valid")) {
                Object parsed = parse(v);
                assertNotNull(name, parsed);
                if (parsed instanceof ByteBuffer) {
                    checkValues((ByteBuffer) parsed, v);
                }
                if (parsed instanceof Placement) {
                    checkPlacement((Placement) parsed, v);
                }
            } else {
                try {
                    parse(v);
                    fail(name + " should have been refused");
                } catch (ProtocolException e) {
                    assertTrue(name + ": '" + e.getMessage() + "' lacks '" + v.getString("error_contains") + "'",
                            e.getMessage().contains(v.getString("error_contains")));
                }
            }
        }
    }

    /** The placement read from a runtime's own account, as the host reads the same vector. */
    private static void checkPlacement(Placement p, JSONObject v) throws Exception {
        JSONObject want = v.getJSONObject("expected");
        JSONObject got = p.toJson();
        for (String key : new String[] {"source", "total_ops"}) {
            assertEquals(v.getString("file") + " " + key, want.get(key).toString(), got.get(key).toString());
        }
        for (String key : new String[] {"ops", "partitions", "op_times_ms"}) {
            JSONObject w = want.getJSONObject(key);
            JSONObject g = got.getJSONObject(key);
            assertEquals(v.getString("file") + " " + key, w.length(), g.length());
            for (java.util.Iterator<String> it = w.keys(); it.hasNext();) {
                String k = it.next();
                assertEquals(v.getString("file") + " " + key + "." + k, w.getDouble(k), g.getDouble(k), 1e-9);
            }
        }
        JSONObject fractions = v.getJSONObject("fractions");
        for (java.util.Iterator<String> it = fractions.keys(); it.hasNext();) {
            String acc = it.next();
            assertEquals(v.getString("file") + " " + acc, fractions.getDouble(acc), p.fraction(acc), 1e-6);
        }
    }

    private static void checkValues(ByteBuffer buf, JSONObject v) throws Exception {
        JSONArray want = v.getJSONArray("values");
        buf.order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < want.length(); i++) {
            double got = v.getString("dtype").equals("int8") ? buf.get(i) : buf.getFloat(i * 4);
            assertEquals(v.getString("file"), want.getDouble(i), got, 1e-6);
        }
    }

    @Test
    public void configDefaultsAndRoundTrip() throws Exception {
        RunConfig c = RunConfig.parse(new String(Files.readAllBytes(vectors().resolve("config_minimal.json")),
                StandardCharsets.UTF_8));
        assertEquals(4, c.threads);
        assertEquals(100, c.runs);
        assertEquals("cpu", c.accelerator);
        assertEquals("compiled_model", c.engine);
        assertArrayEquals(new int[] {1, 2, 2, 3}, c.inputs.get(0).shape);
    }

    @Test
    public void resultRoundTripKeepsFallback() throws Exception {
        RunResult r = RunResult.parse(new String(Files.readAllBytes(vectors().resolve("result_ok_fallback.json")),
                StandardCharsets.UTF_8));
        assertEquals("gpu", r.acceleratorRequested);
        assertEquals("cpu", r.acceleratorUsed);
        assertNotNull(r.fallbackReason);
        RunResult again = RunResult.parse(r.toJson());
        assertEquals(r.fallbackReason, again.fallbackReason);
        assertArrayEquals(r.timingsMs, again.timingsMs, 0.0);
        assertEquals(Long.valueOf(70000), again.memory.get("after_runs").pssTotalKb);
    }
}
