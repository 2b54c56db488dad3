package dev.edgekit.bench.core;

import java.nio.file.Path;
import java.util.List;

/**
 * An inference engine: LiteRT CompiledModel or Interpreter on Android, a fake in tests.
 * Tensors cross this interface as raw little-endian bytes in the model's own dtype. Any
 * exception an engine lets escape (a runtime's own unchecked exception included) becomes an
 * error result of kind {@code engine}: the app never crashes on a model.
 */
public interface Engine extends AutoCloseable {

    /** What loading actually got: the accelerator used, what was available, and why it fell back. */
    final class Loaded {
        public final String acceleratorUsed;
        public final List<String> available;
        public final String fallbackReason;
        public final String engine;

        public Loaded(String engine, String acceleratorUsed, List<String> available, String fallbackReason) {
            this.engine = engine;
            this.acceleratorUsed = acceleratorUsed;
            this.available = available;
            this.fallbackReason = fallbackReason;
        }
    }

    /** One output tensor of a run. */
    final class Output {
        public final String dtype;
        public final int[] shape;
        public final byte[] data;

        public Output(String dtype, int[] shape, byte[] data) {
            this.dtype = dtype;
            this.shape = shape;
            this.data = data;
        }
    }

    /**
     * Read what the engine needs to know about the model's tensors, before the timed load (so
     * load_ms and the memory after load are the engine's alone); throws kind model_load.
     */
    default void inspect(Path model, RunConfig config) throws EngineException {}

    /** Load and compile the model for the config's accelerator/threads; throws kind model_load. */
    Loaded load(Path model, RunConfig config) throws EngineException;

    /** dtype and shape the single input tensor expects, after load. */
    TensorSpec inputSpec(String file) throws EngineException, ProtocolException;

    /** Copy one input (raw bytes in the model's dtype) into the engine's input buffer. */
    void write(byte[] input) throws EngineException;

    /** Run inference on the written input: the only step the timed runs measure. */
    void invoke() throws EngineException;

    /**
     * The engine's own timer of the last {@link #invoke()} in nanoseconds, when the runtime's run
     * call does more than inference (the classic Interpreter copies inputs and outputs inside
     * runForMultipleInputsOutputs; its getLastNativeInferenceDurationNanoseconds times the
     * inference alone). Null: the loop's clock around invoke() is the inference time.
     */
    default Long lastInvokeNanos() {
        return null;
    }

    /** Copy the outputs of the last invoke out of the engine. */
    List<Output> read() throws EngineException;

    /**
     * Where the runtime put the model's ops, asked after the timed runs and memory snapshots (an
     * engine may build a profiled session for it); null when the runtime gives no account of it.
     */
    default Placement placement(RunConfig config) throws EngineException {
        return null;
    }

    /**
     * Write a per-op profile of the model into {@code resultDir} and return its file name; throws
     * kind {@code profile} with the reason when this engine or build cannot.
     */
    default String profile(Path resultDir) throws EngineException {
        throw new EngineException("profile", "this engine has no per-op profiler the app can call");
    }

    /** write, invoke, read: one whole inference (parity outputs, warm-up). */
    default List<Output> run(byte[] input) throws EngineException {
        write(input);
        invoke();
        return read();
    }

    @Override
    void close();
}
