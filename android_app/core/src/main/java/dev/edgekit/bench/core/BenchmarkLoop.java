package dev.edgekit.bench.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The app's benchmark: load, first inference of every input saved for parity, warm-up, timed
 * runs, memory snapshots; outputs and result.json written atomically. Never throws for a bad
 * run: the failure goes into the result with its error_kind.
 */
public final class BenchmarkLoop {
    private final Engine engine;
    private final Clock clock;
    private final MemoryProbe memory;
    private final ThermalProbe thermal;
    private final ProgressListener progress;

    public BenchmarkLoop(Engine engine, Clock clock, MemoryProbe memory, ThermalProbe thermal,
            ProgressListener progress) {
        this.engine = engine;
        this.clock = clock;
        this.memory = memory;
        this.thermal = thermal;
        this.progress = progress;
    }

    private double msSince(long start) {
        return (clock.nanoTime() - start) / 1e6;
    }

    /** Run the config in {@code runDir}; write outputs and result.json to {@code resultDir}. */
    public RunResult run(Path runDir, Path resultDir, Map<String, Object> device) throws IOException {
        String runId = runDir.getFileName().toString();
        Integer before = thermal.status();
        RunResult result = execute(runDir, resultDir, runId);
        result.device.putAll(device);
        result.thermal.put("before", before == null ? org.json.JSONObject.NULL : before);
        Integer after = thermal.status();
        Double headroom = thermal.headroom();
        result.thermal.put("after", after == null ? org.json.JSONObject.NULL : after);
        result.thermal.put("headroom_after", headroom == null || headroom.isNaN() ? org.json.JSONObject.NULL : headroom);
        AtomicFiles.write(resultDir.resolve(Protocol.RESULT_FILE), result.toJson().getBytes(StandardCharsets.UTF_8));
        progress.stage("done");
        return result;
    }

    private RunResult execute(Path runDir, Path resultDir, String runId) throws IOException {
        MemorySnapshot beforeLoad = memory.snapshot();
        RunConfig config;
        List<byte[]> inputs = new ArrayList<>();
        try {
            config = RunConfig.parse(new String(Files.readAllBytes(runDir.resolve(Protocol.CONFIG_FILE)),
                    StandardCharsets.UTF_8));
            for (TensorSpec spec : config.inputs) {
                inputs.add(TensorFiles.read(runDir, spec).array());
            }
        } catch (ProtocolException | IOException e) {
            return RunResult.error(runId, null, "bad_config", e.getMessage());
        }
        RunResult r = new RunResult();
        r.runId = config.runId;
        r.acceleratorRequested = config.accelerator;
        r.threads = config.threads;
        r.memory.put("before_load", beforeLoad);
        try {
            progress.stage("verify");
            ModelCheck.verify(runDir.resolve(config.model), config);
            engine.inspect(runDir.resolve(config.model), config);
            // the baseline of the load's memory cost: whatever inspecting the file took is apart
            r.memory.put("after_inspect", memory.snapshot());
            progress.stage("load");
            long start = clock.nanoTime();
            Engine.Loaded loaded = engine.load(runDir.resolve(config.model), config);
            r.loadMs = msSince(start);
            r.engine = loaded.engine;
            r.acceleratorUsed = loaded.acceleratorUsed;
            r.availableAccelerators = loaded.available;
            r.fallbackReason = loaded.fallbackReason;
            r.memory.put("after_load", memory.snapshot());
            for (TensorSpec spec : config.inputs) {
                TensorSpec want = engine.inputSpec(spec.file);
                if (!want.dtype.equals(spec.dtype) || want.byteSize() != spec.byteSize()) {
                    throw new EngineException("input_mismatch", spec.file + " is " + spec.dtype + " "
                            + java.util.Arrays.toString(spec.shape) + ", the model wants " + want.dtype + " "
                            + java.util.Arrays.toString(want.shape));
                }
            }
            progress.stage("parity");
            // sampled from the first inference to the last timed run (the host takes the maximum of
            // every snapshot as the peak)
            PeakSampler sampler = new PeakSampler(memory, 10);
            try {
                runModel(r, config, inputs, resultDir, progress);
            } finally {
                sampler.close();
                r.memory.put("peak_sampled", sampler.peak());
            }
            r.memory.put("after_runs", memory.snapshot());
            account(r, config, resultDir);
            return r;
        } catch (EngineException e) {
            return failed(r, config, e.kind(), e.getMessage());
        } catch (ProtocolException e) {
            return failed(r, config, "inference", e.getMessage());
        } catch (OutOfMemoryError e) {
            return failed(r, config, "out_of_memory", "out of memory: " + e.getMessage());
        } catch (IOException e) {
            throw e; // the result folder itself failed: the host sees a missing result.json
        } catch (Exception e) {
            // anything else an engine let escape (a runtime's own exception, checked ones thrown from
            // Kotlin included): an error result, never a crash
            return failed(r, config, "engine", e.getClass().getSimpleName() + ": " + e.getMessage());
        } finally {
            engine.close();
        }
    }

    /** Parity inputs (outputs saved), warm-up, then the timed runs. */
    private void runModel(RunResult r, RunConfig config, List<byte[]> inputs, Path resultDir, ProgressListener progress)
            throws EngineException, ProtocolException, IOException {
        for (int k = 0; k < inputs.size(); k++) {
            long s = clock.nanoTime();
            List<Engine.Output> outs = engine.run(inputs.get(k));
            if (k == 0) {
                r.firstInferenceMs = msSince(s);
            }
            for (int j = 0; j < outs.size(); j++) {
                Engine.Output out = outs.get(j);
                TensorSpec spec = new TensorSpec(Protocol.outputName(k, j), out.dtype, out.shape);
                AtomicFiles.write(resultDir.resolve(spec.file), out.data);
                r.outputs.add(spec);
            }
        }
        progress.stage("warmup");
        for (int i = 0; i < config.warmup; i++) {
            engine.run(inputs.get(0));
        }
        progress.stage("timed");
        // inference alone is timed, as benchmark_model does; the copies are reported apart
        double[] timings = new double[config.runs];
        double[] copyIn = new double[config.runs];
        double[] copyOut = new double[config.runs];
        for (int i = 0; i < config.runs; i++) {
            long s = clock.nanoTime();
            engine.write(inputs.get(0));
            long t = clock.nanoTime();
            engine.invoke();
            long u = clock.nanoTime();
            Long own = engine.lastInvokeNanos();
            engine.read();
            copyIn[i] = (t - s) / 1e6;
            timings[i] = (own != null ? own : u - t) / 1e6;
            copyOut[i] = msSince(u);
        }
        r.timingsMs = timings;
        r.copyInMs = LatencyStats.median(copyIn);
        r.copyOutMs = LatencyStats.median(copyOut);
    }

    /** The accelerator's truth from the runtime's placement of the ops, and the per-op profile. */
    private void account(RunResult r, RunConfig config, Path resultDir) {
        progress.stage("placement");
        try {
            r.placement = engine.placement(config);
        } catch (Exception e) { // a Kotlin engine can throw a checked exception Java does not declare
            r.profileNote = "placement: " + e.getMessage();
        }
        Placement p = r.placement;
        Double onAccelerator = p == null ? null : p.fraction(config.accelerator);
        if (!config.accelerator.equals("cpu") && config.accelerator.equals(r.acceleratorUsed) && onAccelerator != null
                && onAccelerator == 0.0) {
            // it compiled, but nothing ran there: that is a CPU run and is reported as one
            r.acceleratorUsed = "cpu";
            r.fallbackReason = config.accelerator.toUpperCase(java.util.Locale.ROOT) + " took 0 of " + p.totalOps
                    + " ops (" + p.source + "): " + p.ops;
        }
        if (config.profile) {
            progress.stage("profile");
            try {
                r.profileFile = engine.profile(resultDir);
            } catch (Exception e) {
                r.profileNote = (r.profileNote == null ? "" : r.profileNote + "; ") + "profile: " + e.getMessage();
            }
        }
    }

    private static RunResult failed(RunResult partial, RunConfig config, String kind, String message) {
        RunResult r = RunResult.error(partial.runId, config, kind, message);
        r.memory.putAll(partial.memory);
        r.loadMs = partial.loadMs;
        r.acceleratorUsed = partial.acceleratorUsed;
        r.availableAccelerators = partial.availableAccelerators;
        r.fallbackReason = partial.fallbackReason;
        return r;
    }
}
