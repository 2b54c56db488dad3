package org.pytorch.executorch;

/** Compile-time stub of the ExecuTorch Android Java API the app calls (executorch-android). */
public abstract class Tensor {
    public static Tensor fromBlob(float[] data, long[] shape) {
        return null;
    }

    public long[] shape() {
        return new long[0];
    }

    public float[] getDataAsFloatArray() {
        return new float[0];
    }
}
