package ai.onnxruntime.providers;

/** Compile-time stub of ONNX Runtime's NNAPIFlags (java/src/main/java/ai/onnxruntime/providers/NNAPIFlags.java). */
public enum NNAPIFlags {
    USE_FP16,
    USE_NCHW,
    /** NNAPI may not use its CPU implementation: an op only the CPU has fails the model load. */
    CPU_DISABLED,
    CPU_ONLY
}
