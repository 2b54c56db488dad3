package org.pytorch.executorch;

/** Compile-time stub of executorch-android's EValue (EValue.kt at v1.4.1). */
public class EValue {
    private EValue() {}

    public static EValue from(Tensor tensor) {
        return new EValue();
    }

    /** The Kotlin property {@code isTensor}. */
    public boolean isTensor() {
        return true;
    }

    /** Throws IllegalStateException when the value is not a tensor. */
    public Tensor toTensor() {
        throw new IllegalStateException("stub");
    }
}
