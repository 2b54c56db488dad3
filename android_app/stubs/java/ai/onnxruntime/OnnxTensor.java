package ai.onnxruntime;

import androidx.annotation.Nullable;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * Compile-time stub of ONNX Runtime's OnnxTensor (java/src/main/java/ai/onnxruntime/OnnxTensor.java).
 * The typed getters return a copy, or null when the tensor is of another type: getFloatBuffer for
 * FLOAT/FLOAT16/BFLOAT16 only, getIntBuffer for INT32 only, getByteBuffer for every non-STRING
 * tensor (its raw bytes, in native order).
 */
public class OnnxTensor implements OnnxValue {
    OnnxTensor() {}

    public static OnnxTensor createTensor(OrtEnvironment env, FloatBuffer data, long[] shape) throws OrtException {
        return new OnnxTensor();
    }

    @Nullable
    public FloatBuffer getFloatBuffer() {
        return null;
    }

    @Nullable
    public IntBuffer getIntBuffer() {
        return null;
    }

    @Nullable
    public ByteBuffer getByteBuffer() {
        return null;
    }

    @Override
    public TensorInfo getInfo() {
        return new TensorInfo();
    }

    @Override
    public void close() {}
}
