package org.pytorch.executorch;

/** Compile-time stub of executorch-android's DType (DType.kt at v1.4.1; the codes are ScalarType's). */
public enum DType {
    UINT8,
    INT8,
    INT16,
    INT32,
    INT64,
    HALF,
    FLOAT,
    DOUBLE,
    BOOL,
    BFLOAT16
}
