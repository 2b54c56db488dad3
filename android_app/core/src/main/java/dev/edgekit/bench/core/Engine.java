package dev.edgekit.bench.core;

import java.nio.file.Path;
import java.util.List;

/**
 * An inference engine: LiteRT CompiledModel or Interpreter on Android, a fake in tests.
 * Tensors cross this interface as raw little-endian bytes in the model's own dtype.
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

    /** Load and compile the model for the config's accelerator/threads; throws kind model_load. */
    Loaded load(Path model, RunConfig config) throws EngineException;

    /** dtype and shape the single input tensor expects, after load. */
    TensorSpec inputSpec(String file) throws EngineException, ProtocolException;

    /** One inference; throws kind input_mismatch or inference. */
    List<Output> run(byte[] input) throws EngineException;

    @Override
    void close();
}
