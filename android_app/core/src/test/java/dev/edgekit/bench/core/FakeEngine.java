package dev.edgekit.bench.core;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;

/** An engine that sums its float32 input into one float32 output, with injectable failures. */
final class FakeEngine implements Engine {
    int[] inputShape = {1, 2, 2, 3};
    String inputDtype = "float32";
    String failLoad;
    boolean oom;
    String acceleratorUsed = "cpu";
    String fallbackReason;
    int runs;
    boolean closed;
    FakeClock clock;
    /** Milliseconds the fake copy-in and copy-out take (outside the timed inference). */
    double copyInMs;
    double copyOutMs;
    /** An unchecked exception thrown by invoke, as a runtime's own exception would be. */
    RuntimeException invokeFailure;
    /** Milliseconds reading the model's tensor types takes (before the timed load). */
    double inspectMs;
    /** Milliseconds the engine's own timer reports for each invoke (null: it has none). */
    Double ownTimerMs;
    /** The runtime's delegation log lines, as the app reads them from logcat (null: none). */
    List<String> delegationLog;
    /** The profile file the engine writes when asked (null: it has no profiler). */
    String profileName;
    private byte[] input;
    private float sum;

    @Override
    public Long lastInvokeNanos() {
        return ownTimerMs == null ? null : Math.round(ownTimerMs * 1e6);
    }

    @Override
    public void inspect(Path model, RunConfig config) {
        if (clock != null) {
            clock.advanceMs(inspectMs);
        }
    }

    @Override
    public Loaded load(Path model, RunConfig config) throws EngineException {
        if (failLoad != null) {
            throw new EngineException("model_load", failLoad);
        }
        if (clock != null) {
            clock.advanceMs(7.5);
        }
        return new Loaded(config.engine, acceleratorUsed, Collections.singletonList("cpu"), fallbackReason);
    }

    @Override
    public TensorSpec inputSpec(String file) throws ProtocolException {
        return new TensorSpec(file, inputDtype, inputShape);
    }

    @Override
    public void write(byte[] input) {
        if (clock != null) {
            clock.advanceMs(copyInMs);
        }
        this.input = input.clone();
    }

    @Override
    public void invoke() {
        if (oom) {
            throw new OutOfMemoryError("fake engine ran out of memory");
        }
        if (invokeFailure != null) {
            throw invokeFailure;
        }
        runs++;
        if (clock != null) {
            clock.advanceMs(1.0 + (runs % 4) * 0.25);
        }
        sum = 0;
        for (float f : TensorFiles.floats(ByteBuffer.wrap(input))) {
            sum += f;
        }
    }

    @Override
    public List<Output> read() {
        if (clock != null) {
            clock.advanceMs(copyOutMs);
        }
        return Collections.singletonList(new Output("float32", new int[] {1, 1}, TensorFiles.encodeFloats(new float[] {sum})));
    }

    @Override
    public Placement placement(RunConfig config) {
        return delegationLog == null ? null : Placement.fromTfliteLog(delegationLog);
    }

    @Override
    public String profile(Path resultDir) throws EngineException {
        if (profileName == null) {
            throw new EngineException("profile", "no profiler in this build");
        }
        try {
            java.nio.file.Files.write(resultDir.resolve(profileName), new byte[] {42});
        } catch (java.io.IOException e) {
            throw new EngineException("profile", e.getMessage());
        }
        return profileName;
    }

    @Override
    public void close() {
        closed = true;
    }
}
