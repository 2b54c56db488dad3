package ai.onnxruntime;

/** Compile-time stub of the ONNX Runtime Java API the app calls. */
public interface OnnxValue extends AutoCloseable {
    @Override
    void close();
}
