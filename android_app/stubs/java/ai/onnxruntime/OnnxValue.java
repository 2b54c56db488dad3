package ai.onnxruntime;

/** Compile-time stub of ONNX Runtime's OnnxValue (java/src/main/java/ai/onnxruntime/OnnxValue.java). */
public interface OnnxValue extends AutoCloseable {
    ValueInfo getInfo();

    @Override
    void close();
}
