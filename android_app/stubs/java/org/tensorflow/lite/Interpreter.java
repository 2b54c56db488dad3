package org.tensorflow.lite;

import androidx.annotation.Nullable;
import java.io.File;
import java.util.Map;

/**
 * Compile-time stub of the TensorFlow Lite Java API the app calls. Checked against LiteRT v2.2.0's
 * tflite/java/src/main/java/org/tensorflow/lite/Interpreter.java and InterpreterApi.java:
 * getLastNativeInferenceDurationNanoseconds returns a boxed Long, null before any inference.
 */
public final class Interpreter implements AutoCloseable {
    public static class Options {
        public Options() {}

        public Options setNumThreads(int numThreads) {
            return this;
        }

        public Options setUseXNNPACK(boolean useXNNPACK) {
            return this;
        }
    }

    public Interpreter(File modelFile, Options options) {}

    public int getInputTensorCount() {
        return 0;
    }

    public int getOutputTensorCount() {
        return 0;
    }

    public Tensor getInputTensor(int inputIndex) {
        return null;
    }

    public Tensor getOutputTensor(int outputIndex) {
        return null;
    }

    public void runForMultipleInputsOutputs(Object[] inputs, Map<Integer, Object> outputs) {}

    @Nullable
    public Long getLastNativeInferenceDurationNanoseconds() {
        return null;
    }

    @Override
    public void close() {}
}
