package org.tensorflow.lite;

/**
 * Compile-time stub of the TensorFlow Lite Java API the app calls. Checked against LiteRT v2.2.0's
 * tflite/java/src/main/java/org/tensorflow/lite/DataType.java: it has no FLOAT16 (the Java API
 * cannot name a float16 tensor).
 */
public enum DataType {
    FLOAT32, INT32, UINT8, INT64, STRING, BOOL, INT16, INT8
}
