package org.pytorch.executorch;

/**
 * Compile-time stub of executorch-android's Tensor (Tensor.kt at v1.4.1). Every {@code dataAs*}
 * getter of the real class throws IllegalStateException unless the tensor has that dtype: the
 * stub's do too, so a caller must look at {@link #dtype()} first.
 */
public abstract class Tensor {
    public static Tensor fromBlob(float[] data, long[] shape) {
        throw new IllegalStateException("stub");
    }

    /** The real one checks the buffer is direct and in native order (IllegalArgumentException). */
    public static Tensor fromBlob(java.nio.FloatBuffer data, long[] shape) {
        throw new IllegalStateException("stub");
    }

    /** A direct, native-order buffer of numElements floats. */
    public static java.nio.FloatBuffer allocateFloatBuffer(int numElements) {
        return java.nio.FloatBuffer.allocate(numElements);
    }

    public long[] shape() {
        return new long[0];
    }

    public abstract DType dtype();

    public float[] getDataAsFloatArray() {
        throw new IllegalStateException("Tensor cannot return data as float array.");
    }

    public byte[] getDataAsByteArray() {
        throw new IllegalStateException("Tensor cannot return data as byte array.");
    }

    public byte[] getDataAsUnsignedByteArray() {
        throw new IllegalStateException("Tensor cannot return data as unsigned byte array.");
    }

    public int[] getDataAsIntArray() {
        throw new IllegalStateException("Tensor cannot return data as int array.");
    }

    public long[] getDataAsLongArray() {
        throw new IllegalStateException("Tensor cannot return data as long array.");
    }
}
