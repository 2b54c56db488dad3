package ai.onnxruntime;

/** Compile-time stub of ONNX Runtime's OnnxJavaType (java/src/main/java/ai/onnxruntime/OnnxJavaType.java). */
public enum OnnxJavaType {
    FLOAT,
    DOUBLE,
    INT8,
    INT16,
    INT32,
    INT64,
    BOOL,
    STRING,
    UINT8,
    FLOAT16,
    BFLOAT16,
    UNKNOWN
}
