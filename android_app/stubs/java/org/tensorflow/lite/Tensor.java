package org.tensorflow.lite;

/** Compile-time stub of the TensorFlow Lite Java API the app calls. */
public interface Tensor {
    DataType dataType();

    int[] shape();
}
