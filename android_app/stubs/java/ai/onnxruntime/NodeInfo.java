package ai.onnxruntime;

/** Compile-time stub of the ONNX Runtime Java API the app calls. */
public final class NodeInfo {
    public String getName() {
        return "";
    }

    public ValueInfo getInfo() {
        return null;
    }
}
