package ai.onnxruntime;

/** Compile-time stub of the ONNX Runtime Java API the app calls (onnxruntime-android). */
public class OrtException extends Exception {
    public OrtException(String message) {
        super(message);
    }
}
