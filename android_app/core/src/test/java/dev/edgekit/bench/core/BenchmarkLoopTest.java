package dev.edgekit.bench.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * The loop against a fake engine: success, every failure path, atomic writes. Each result it
 * writes is also copied to {@code -Dedgekit.results.out} for the Python host parser to accept.
 */
public class BenchmarkLoopTest {
    @Rule public TemporaryFolder tmp = new TemporaryFolder();

    /** sha256 of the 3-byte model file every run folder holds (the app checks it before loading). */
    private static final String SHA = "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81";

    private Path runDir(String runId, String config, int nInputs, int bytesPerInput) throws IOException {
        Path dir = tmp.newFolder(runId).toPath();
        Files.write(dir.resolve("model.tflite"), new byte[] {1, 2, 3});
        for (int i = 0; i < nInputs; i++) {
            float[] values = new float[bytesPerInput / 4];
            for (int j = 0; j < values.length; j++) {
                values[j] = i + j * 0.5f;
            }
            Files.write(dir.resolve(String.format("input_%03d.bin", i)), TensorFiles.encodeFloats(values));
        }
        Files.write(dir.resolve("config.json"), config.getBytes(StandardCharsets.UTF_8));
        return dir;
    }

    private static String config(String runId, String accelerator, int runs, int nInputs) {
        StringBuilder inputs = new StringBuilder();
        for (int i = 0; i < nInputs; i++) {
            inputs.append(i > 0 ? "," : "").append(String.format(
                    "{\"file\":\"input_%03d.bin\",\"dtype\":\"float32\",\"shape\":[1,2,2,3]}", i));
        }
        return "{\"schema\":\"edgekit.bench.config\",\"schema_version\":1,\"run_id\":\"" + runId + "\","
                + "\"model\":\"model.tflite\",\"model_sha256\":\"" + SHA + "\",\"model_size\":3,"
                + "\"inputs\":[" + inputs + "],\"accelerator\":\"" + accelerator + "\",\"threads\":2,"
                + "\"warmup\":2,\"runs\":" + runs + "}";
    }

    private final List<String> stages = new ArrayList<>();

    private RunResult run(FakeEngine engine, Path runDir, Path out) throws IOException {
        FakeClock clock = new FakeClock();
        engine.clock = clock;
        MemoryProbe probe = () -> new MemorySnapshot(1000 + engine.runs, 2000 + engine.runs, 900L, 12L);
        Map<String, Object> device = Collections.singletonMap("model", "Fake Phone");
        ThermalProbe heat = new ThermalProbe() {
            private int calls;

            @Override
            public Integer status() {
                return calls++;
            }

            @Override
            public Double headroom() {
                return 0.42;
            }
        };
        RunResult r = new BenchmarkLoop(engine, clock, probe, heat, stages::add).run(runDir, out, device);
        exportForHost(out, runDir.getFileName().toString());
        return r;
    }

    /** Copy the written result where the Python test (tests/android_app) parses it with the host parser. */
    private static void exportForHost(Path out, String name) throws IOException {
        String target = System.getProperty("edgekit.results.out");
        if (target != null) {
            Path dir = Paths.get(target);
            Files.createDirectories(dir);
            Files.copy(out.resolve("result.json"), dir.resolve(name + ".result.json"),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
    }

    @Test
    public void timesRunsAndSavesParityOutputs() throws Exception {
        Path dir = runDir("ok-run", config("ok-run", "cpu", 8, 3), 3, 48);
        Path out = tmp.newFolder("out-ok").toPath();
        FakeEngine engine = new FakeEngine();
        RunResult r = run(engine, dir, out);
        assertEquals("ok", r.status);
        assertEquals(8, r.timingsMs.length);
        assertEquals(7.5, r.loadMs, 1e-9);
        assertEquals(3 + 2 + 8, engine.runs); // parity inputs, warmup, timed
        assertTrue(engine.closed);
        for (double t : r.timingsMs) {
            assertTrue(t >= 1.0 && t <= 1.75);
        }
        assertEquals(3, r.outputs.size());
        assertEquals("out_002_0.bin", r.outputs.get(2).file);
        float[] sum2 = TensorFiles.floats(ByteBuffer.wrap(Files.readAllBytes(out.resolve("out_002_0.bin"))));
        float expected = 0;
        for (int j = 0; j < 12; j++) {
            expected += 2 + j * 0.5f;
        }
        assertEquals(expected, sum2[0], 1e-5);
        assertEquals(List.of("verify", "load", "parity", "warmup", "timed", "placement", "done"), stages);
        RunResult parsed = RunResult.parse(new String(Files.readAllBytes(out.resolve("result.json")),
                StandardCharsets.UTF_8));
        assertArrayEquals(r.timingsMs, parsed.timingsMs, 0.0);
        // before_load, after_inspect, after_load, peak_sampled, after_runs
        assertEquals(5, parsed.memory.size());
        // the probe's RSS grows with every run: the sampler's closing sample saw all 13
        assertEquals(1000 + 13, parsed.memory.get("peak_sampled").vmRssKb);
        assertEquals(Long.valueOf(900), parsed.memory.get("after_runs").pssTotalKb);
        assertEquals(0, r.thermal.get("before"));
        assertEquals(1, r.thermal.get("after"));
        assertEquals(0.42, (Double) r.thermal.get("headroom_after"), 0.0);
        try (Stream<Path> files = Files.list(out)) {
            assertFalse("no temp files left", files.anyMatch(p -> p.getFileName().toString().endsWith(".tmp")));
        }
    }

    @Test
    public void onlyInferenceIsTimedAndTheCopiesAreReportedApart() throws Exception {
        Path dir = runDir("copy-run", config("copy-run", "cpu", 6, 1), 1, 48);
        Path out = tmp.newFolder("out-copy").toPath();
        FakeEngine engine = new FakeEngine();
        engine.copyInMs = 3.0;
        engine.copyOutMs = 2.0;
        engine.inspectMs = 40.0;
        RunResult r = run(engine, dir, out);
        assertEquals("ok", r.status);
        assertEquals("reading the tensor types is not part of the load", 7.5, r.loadMs, 1e-9);
        assertTrue("the load's memory baseline is taken after inspecting", r.memory.containsKey("after_inspect"));
        for (double t : r.timingsMs) {
            assertTrue("copies leaked into the timed region: " + t, t >= 1.0 && t <= 1.75);
        }
        assertEquals(3.0, r.copyInMs, 1e-9);
        assertEquals(2.0, r.copyOutMs, 1e-9);
        RunResult parsed = RunResult.parse(new String(Files.readAllBytes(out.resolve("result.json")),
                StandardCharsets.UTF_8));
        assertEquals(3.0, parsed.copyInMs, 1e-9);
    }

    @Test
    public void anEngineTimerThatExcludesItsCopiesIsWhatIsTimed() throws Exception {
        Path dir = runDir("own-run", config("own-run", "cpu", 5, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.ownTimerMs = 0.5; // e.g. the Interpreter's native inference time, without its copies
        RunResult r = run(engine, dir, tmp.newFolder("out-own").toPath());
        assertEquals("ok", r.status);
        for (double t : r.timingsMs) {
            assertEquals("the loop's clock (1.0-1.75 ms) was used instead of the engine's timer", 0.5, t, 1e-9);
        }
    }

    @Test
    public void aRuntimeExceptionFromTheEngineIsAnErrorResult() throws Exception {
        Path dir = runDir("rt-run", config("rt-run", "gpu", 4, 1), 1, 48);
        Path out = tmp.newFolder("out-rt").toPath();
        FakeEngine engine = new FakeEngine();
        engine.invokeFailure = new IllegalStateException("createInputBuffers failed: GPU delegate rejected the graph");
        RunResult r = run(engine, dir, out);
        assertEquals("error", r.status);
        assertEquals("engine", r.errorKind);
        assertTrue(r.errorMessage.contains("IllegalStateException") && r.errorMessage.contains("createInputBuffers"));
        assertTrue(engine.closed);
        assertTrue(Files.exists(out.resolve("result.json")));
    }

    @Test
    public void aModelThatIsNotTheOnePushedIsRefusedBeforeLoading() throws Exception {
        Path dir = runDir("sha-run", config("sha-run", "cpu", 4, 1), 1, 48);
        Files.write(dir.resolve("model.tflite"), new byte[] {1, 2, 4}); // same size, one byte changed
        FakeEngine engine = new FakeEngine();
        RunResult r = run(engine, dir, tmp.newFolder("out-sha").toPath());
        assertEquals("error", r.status);
        assertEquals("model_checksum", r.errorKind);
        assertTrue(r.errorMessage.contains("sha256"));
        assertEquals(0, engine.runs);
        Files.write(dir.resolve("model.tflite"), new byte[] {1, 2});
        RunResult shorter = run(new FakeEngine(), dir, tmp.newFolder("out-size").toPath());
        assertEquals("model_checksum", shorter.errorKind);
        assertTrue(shorter.errorMessage.contains("2 bytes"));
    }

    @Test
    public void acceleratorFallbackIsRecorded() throws Exception {
        Path dir = runDir("gpu-run", config("gpu-run", "gpu", 3, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.fallbackReason = "GPU accelerator unavailable";
        RunResult r = run(engine, dir, tmp.newFolder("out-gpu").toPath());
        assertEquals("gpu", r.acceleratorRequested);
        assertEquals("cpu", r.acceleratorUsed);
        assertEquals("GPU accelerator unavailable", r.fallbackReason);
    }

    @Test
    public void anAcceleratorThatTookNoOpIsAFallbackSaidSo() throws Exception {
        Path dir = runDir("gpu-empty", config("gpu-empty", "gpu", 3, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.acceleratorUsed = "gpu"; // Options(GPU, CPU) compiled: the request looks granted
        engine.delegationLog = Arrays.asList(
                "I tflite  : Replacing 65 out of 65 node(s) with delegate (TfLiteXNNPackDelegate) node, "
                        + "yielding 1 partitions for subgraph 0.");
        RunResult r = run(engine, dir, tmp.newFolder("out-gpu-empty").toPath());
        assertEquals("cpu", r.acceleratorUsed);
        assertTrue(r.fallbackReason, r.fallbackReason.startsWith("GPU took 0 of 65 ops"));
        assertEquals(Integer.valueOf(65), r.placement.ops.get("TfLiteXNNPackDelegate"));
        assertTrue(stages.contains("placement"));
    }

    @Test
    public void aPartlyDelegatedModelKeepsItsAcceleratorAndReportsTheShare() throws Exception {
        Path dir = runDir("gpu-part", config("gpu-part", "gpu", 3, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.acceleratorUsed = "gpu";
        engine.delegationLog = Arrays.asList(
                "Replacing 60 out of 65 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 3 partitions "
                        + "for subgraph 0.",
                "Replacing 4 out of 7 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 2 partitions "
                        + "for subgraph 0.");
        RunResult r = run(engine, dir, tmp.newFolder("out-gpu-part").toPath());
        assertEquals("gpu", r.acceleratorUsed);
        assertNull(r.fallbackReason);
        assertEquals(60.0 / 65, r.placement.fraction("gpu"), 1e-9);
        assertEquals(Integer.valueOf(1), r.placement.ops.get(Placement.BUILTIN));
        String json = new String(Files.readAllBytes(tmp.getRoot().toPath().resolve("out-gpu-part/result.json")),
                StandardCharsets.UTF_8);
        assertTrue(json.contains("\"TfLiteGpuDelegateV2\": 60"));
    }

    @Test
    public void aProfileIsWrittenOnRequestOrItsAbsenceSaid() throws Exception {
        String cfg = config("prof-run", "cpu", 3, 1).replace("\"runs\":3", "\"runs\":3,\"profile\":true");
        Path dir = runDir("prof-run", cfg, 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.profileName = "profile.etdump";
        RunResult r = run(engine, dir, tmp.newFolder("out-prof").toPath());
        assertEquals("profile.etdump", r.profileFile);
        assertTrue(Files.exists(tmp.getRoot().toPath().resolve("out-prof/profile.etdump")));
        Path dir2 = runDir("noprof-run", cfg.replace("prof-run", "noprof-run"), 1, 48);
        RunResult none = run(new FakeEngine(), dir2, tmp.newFolder("out-noprof").toPath());
        assertEquals("ok", none.status);
        assertNull(none.profileFile);
        assertTrue(none.profileNote, none.profileNote.contains("no profiler in this build"));
        assertNull(none.placement);
    }

    @Test
    public void modelLoadErrorIsAResultNotACrash() throws Exception {
        Path dir = runDir("load-fail", config("load-fail", "cpu", 3, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.failLoad = "Failed to build model";
        RunResult r = run(engine, dir, tmp.newFolder("out-load").toPath());
        assertEquals("error", r.status);
        assertEquals("model_load", r.errorKind);
        assertEquals(0, r.timingsMs.length);
        assertTrue(engine.closed);
    }

    @Test
    public void wrongTensorSizeIsRefused() throws Exception {
        Path dir = runDir("short-input", config("short-input", "cpu", 3, 1), 1, 40);
        RunResult r = run(new FakeEngine(), dir, tmp.newFolder("out-short").toPath());
        assertEquals("bad_config", r.errorKind);
        assertTrue(r.errorMessage, r.errorMessage.contains("40 bytes, expected 48"));
    }

    @Test
    public void inputThatDoesNotFitTheModel() throws Exception {
        Path dir = runDir("mismatch", config("mismatch", "cpu", 3, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.inputDtype = "int8";
        RunResult r = run(engine, dir, tmp.newFolder("out-mismatch").toPath());
        assertEquals("input_mismatch", r.errorKind);
        assertTrue(r.memory.containsKey("after_load"));
    }

    @Test
    public void outOfMemoryIsReported() throws Exception {
        Path dir = runDir("oom", config("oom", "cpu", 3, 1), 1, 48);
        FakeEngine engine = new FakeEngine();
        engine.oom = true;
        RunResult r = run(engine, dir, tmp.newFolder("out-oom").toPath());
        assertEquals("out_of_memory", r.errorKind);
    }

    @Test
    public void badConfigStillWritesAResult() throws Exception {
        Path dir = runDir("bad-config", "{\"schema\":\"nope\"}", 0, 0);
        Path out = tmp.newFolder("out-bad").toPath();
        RunResult r = run(new FakeEngine(), dir, out);
        assertEquals("bad_config", r.errorKind);
        assertNull(r.acceleratorUsed);
        assertTrue(Files.exists(out.resolve("result.json")));
    }

    @Test
    public void atomicWriteReplacesWholeFiles() throws Exception {
        Path target = tmp.getRoot().toPath().resolve("x.json");
        AtomicFiles.write(target, "first".getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(target, "second".getBytes(StandardCharsets.UTF_8));
        assertEquals("second", new String(Files.readAllBytes(target), StandardCharsets.UTF_8));
        try (Stream<Path> files = Files.list(tmp.getRoot().toPath())) {
            assertEquals(0, files.filter(p -> p.getFileName().toString().startsWith(".x.json")).count());
        }
    }
}
