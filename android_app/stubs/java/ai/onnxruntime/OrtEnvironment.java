package ai.onnxruntime;

/** Compile-time stub of the ONNX Runtime Java API the app calls. */
public final class OrtEnvironment implements AutoCloseable {
    public static OrtEnvironment getEnvironment() {
        return new OrtEnvironment();
    }

    public OrtSession createSession(String modelPath, OrtSession.SessionOptions options) throws OrtException {
        return null;
    }

    @Override
    public void close() {}
}
