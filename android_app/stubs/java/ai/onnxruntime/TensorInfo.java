package ai.onnxruntime;

/**
 * Compile-time stub of ONNX Runtime's TensorInfo (java/src/main/java/ai/onnxruntime/TensorInfo.java).
 * getShape() holds -1 for a symbolic dimension (a dynamic batch): it cannot be passed to
 * createTensor as it is.
 */
public final class TensorInfo implements ValueInfo {
    public final OnnxJavaType type = OnnxJavaType.FLOAT;

    TensorInfo() {}

    public long[] getShape() {
        return new long[] {-1};
    }
}
