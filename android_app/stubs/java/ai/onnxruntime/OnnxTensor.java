package ai.onnxruntime;

import java.nio.FloatBuffer;

/** Compile-time stub of the ONNX Runtime Java API the app calls. */
public final class OnnxTensor implements OnnxValue {
    public static OnnxTensor createTensor(OrtEnvironment env, FloatBuffer data, long[] shape) throws OrtException {
        return new OnnxTensor();
    }

    public FloatBuffer getFloatBuffer() {
        return FloatBuffer.allocate(0);
    }

    public TensorInfo getInfo() {
        return new TensorInfo();
    }

    @Override
    public void close() {}
}
