package org.tensorflow.lite;

/** Compile-time stub of the TensorFlow Lite Java API the app calls. */
public enum DataType {
    FLOAT32, INT32, UINT8, INT64, STRING, BOOL, INT16, INT8, FLOAT16
}
