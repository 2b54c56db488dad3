package org.pytorch.executorch;

/**
 * Compile-time stub of executorch-android's Module as Kotlin and Java callers see it. Checked
 * against extension/android/executorch_android/src/main/java/org/pytorch/executorch/Module.kt
 * at v1.4.1 (a Kotlin class: companion {@code @JvmStatic @JvmOverloads load(modelPath, loadMode =
 * LOAD_MODE_FILE, numThreads = 0)}, {@code loadMethod} throws ExecutorchRuntimeException, an
 * unchecked exception, on a non-zero error code).
 */
public class Module implements java.io.Closeable {
    /** Reads the whole file into a buffer (the default). */
    public static final int LOAD_MODE_FILE = 0;
    /** mmap: pages load on demand and stay file-backed. */
    public static final int LOAD_MODE_MMAP = 1;
    public static final int LOAD_MODE_MMAP_USE_MLOCK = 2;
    public static final int LOAD_MODE_MMAP_USE_MLOCK_IGNORE_ERRORS = 3;

    private Module() {}

    public static Module load(String modelPath) {
        return new Module();
    }

    public static Module load(String modelPath, int loadMode) {
        return new Module();
    }

    /** numThreads 0: a hardware-specific default. */
    public static Module load(String modelPath, int loadMode, int numThreads) {
        return new Module();
    }

    public EValue[] forward(EValue... inputs) {
        return new EValue[0];
    }

    public EValue[] execute(String methodName, EValue... inputs) {
        return new EValue[0];
    }

    public void loadMethod(String methodName) {}

    /**
     * {@code @Experimental open fun etdump(outputPath: String): Boolean} (v1.4.1): false when the
     * runtime was built without the event tracer, or the file could not be written.
     */
    public boolean etdump(String outputPath) {
        return false;
    }

    public void destroy() {}

    @Override
    public void close() {}
}
